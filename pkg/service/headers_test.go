package service

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Oversized headers get the JSON error every other error has, not
// net/http's plain-text 431.
func TestServe_OversizedHeadersAreAJSONError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv := HTTPServer("127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	srv.MaxHeaderBytes = 4096
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, srv, time.Second, func(a net.Addr) { addr <- a }) }()
	t.Cleanup(func() { cancel(); <-done })
	url := "http://" + (<-addr).String() + "/x"

	get := func(headerLen int) (int, []byte) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-Big", strings.Repeat("a", headerLen))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, b := get(3000); code != 204 {
		t.Fatalf("3000-byte header: %d %s", code, b)
	}
	code, b := get(6000)
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if code != 431 || json.Unmarshal(b, &e) != nil || e.Error.Code != "headers_too_large" || !strings.Contains(e.Error.Message, "4096") {
		t.Fatalf("6000-byte header: %d %s", code, b)
	}
}
