package keys

import (
	"fmt"
	"net/http"
	"sort"

	"github.com/labstack/echo/v4"

	"github.com/hookrun/hookrun/pkg/argtemplate"
	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/resource"
)

func (s *Service) putJob(c echo.Context) error {
	var j resource.Job
	if err := decode(c, &j); err != nil {
		return err
	}
	if err := placeMeta(c, &j.Metadata); err != nil {
		return err
	}
	if err := j.Validate(); err != nil {
		return err
	}
	if _, err := argtemplate.Compile(j.Spec.TemplateArgs()); err != nil {
		return &resource.FieldError{Field: "spec.args", Msg: err.Error()}
	}
	ctx := c.Request().Context()
	key := bus.ConfigKey(j.Metadata.Namespace, j.Metadata.Name)
	old, rev, found, err := s.jobs.get(ctx, key)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	result := ResultCreated
	if found {
		if sameJSON(old.Spec, j.Spec) {
			return respond(c, ResultUnchanged, old)
		}
		j.Metadata.UID, j.Metadata.CreatedAt, j.Metadata.Generation = old.Metadata.UID, old.Metadata.CreatedAt, old.Metadata.Generation
		result = ResultConfigured
	} else {
		j.Metadata.UID, j.Metadata.CreatedAt = ident.NewUID(), now
	}
	j.Metadata.Generation++
	j.Metadata.UpdatedAt = now
	if err := s.jobs.put(ctx, key, &j, rev); err != nil {
		return err
	}
	return respond(c, result, &j)
}

func (s *Service) getJob(c echo.Context) error {
	ns, err := namespace(c)
	if err != nil {
		return err
	}
	name, err := pathName(c)
	if err != nil {
		return err
	}
	j, _, found, err := s.jobs.get(c.Request().Context(), bus.ConfigKey(ns, name))
	if err != nil {
		return err
	}
	if !found {
		return notFound(fmt.Sprintf("job %s/%s", ns, name))
	}
	return c.JSON(http.StatusOK, j)
}

func (s *Service) listJobs(c echo.Context) error {
	ns, err := namespace(c)
	if err != nil {
		return err
	}
	js, err := s.jobs.list(c.Request().Context(), nsPrefix(ns))
	if err != nil {
		return err
	}
	sort.Slice(js, func(a, b int) bool { return js[a].Metadata.Name < js[b].Metadata.Name })
	out := make([]resource.Job, len(js))
	for i, j := range js {
		out[i] = *j
	}
	return c.JSON(http.StatusOK, listResponse[resource.Job]{Items: out})
}

func (s *Service) deleteJob(c echo.Context) error {
	ns, err := namespace(c)
	if err != nil {
		return err
	}
	name, err := pathName(c)
	if err != nil {
		return err
	}
	found, err := s.jobs.del(c.Request().Context(), bus.ConfigKey(ns, name))
	if err != nil {
		return err
	}
	if !found {
		return notFound(fmt.Sprintf("job %s/%s", ns, name))
	}
	return c.JSON(http.StatusOK, map[string]any{"deleted": 1})
}
