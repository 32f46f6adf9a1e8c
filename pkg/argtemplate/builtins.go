package argtemplate

// The metered versions of text/template's built-ins whose work grows with
// their arguments (see funcs), otherwise the same.

import (
	"fmt"
	"reflect"
)

// metered is f, a function rendering its arguments with fmt, charging b
// for the objects fmt walks (weigh), then for the text made.
func (b *budget) metered(f func(...any) string) func(...any) (string, error) {
	return func(args ...any) (string, error) {
		for _, a := range args {
			if err := b.weigh(a); err != nil {
				return "", err
			}
		}
		s := f(args...)
		return s, b.charge(len(s) + callWork)
	}
}

// printf is fmt.Sprintf, metered as print is, and for its format, with
// JSON numbers formatted as numbers (printfNumber); a format that does not
// suit its arguments is an error (printfError).
func (b *budget) printf(format string, args ...any) (string, error) {
	if err := b.charge(len(format) + callWork); err != nil {
		return "", err
	}
	for _, a := range args {
		if err := b.weigh(a); err != nil {
			return "", err
		}
	}
	s := fmt.Sprintf(format, printfArgs(args)...)
	if err := b.charge(len(s)); err != nil {
		return "", err
	}
	return s, printfError(format, args, s)
}

// index is text/template's index (item[i][j]...), charging for the keys
// it hashes: {{ index $.body.m $.body.k }} within a range hashes a
// sender's key, however long, once per iteration. The code is the
// standard library's.
func (b *budget) index(item reflect.Value, indexes ...reflect.Value) (reflect.Value, error) {
	if err := b.charge(callWork); err != nil {
		return reflect.Value{}, err
	}
	item = indirectInterface(item)
	if !item.IsValid() {
		return reflect.Value{}, fmt.Errorf("index of untyped nil")
	}
	for _, index := range indexes {
		index = indirectInterface(index)
		var isNil bool
		if item, isNil = indirect(item); isNil {
			return reflect.Value{}, fmt.Errorf("index of nil pointer")
		}
		switch item.Kind() {
		case reflect.Array, reflect.Slice, reflect.String:
			x, err := indexArg(index, item.Len())
			if err != nil {
				return reflect.Value{}, err
			}
			item = item.Index(x)
		case reflect.Map:
			index, err := prepareArg(index, item.Type().Key())
			if err != nil {
				return reflect.Value{}, err
			}
			if index.Kind() == reflect.String {
				if err := b.charge(index.Len()); err != nil {
					return reflect.Value{}, err
				}
			}
			if x := item.MapIndex(index); x.IsValid() {
				item = x
			} else {
				item = reflect.Zero(item.Type().Elem())
			}
		default:
			return reflect.Value{}, fmt.Errorf("can't index item of type %s", item.Type())
		}
	}
	return item, nil
}

// indexArg, prepareArg, indirect and indirectInterface are the standard
// library's helpers of index.

func indexArg(index reflect.Value, cap int) (int, error) {
	var x int64
	switch index.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x = index.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		x = int64(index.Uint())
	case reflect.Invalid:
		return 0, fmt.Errorf("cannot index slice/array with nil")
	default:
		return 0, fmt.Errorf("cannot index slice/array with type %s", index.Type())
	}
	if x < 0 || int(x) < 0 || int(x) > cap {
		return 0, fmt.Errorf("index out of range: %d", x)
	}
	return int(x), nil
}

func prepareArg(value reflect.Value, argType reflect.Type) (reflect.Value, error) {
	if !value.IsValid() {
		if !canBeNil(argType) {
			return reflect.Value{}, fmt.Errorf("value is nil; should be of type %s", argType)
		}
		value = reflect.Zero(argType)
	}
	if value.Type().AssignableTo(argType) {
		return value, nil
	}
	if intLike(value.Kind()) && intLike(argType.Kind()) && value.Type().ConvertibleTo(argType) {
		return value.Convert(argType), nil
	}
	return reflect.Value{}, fmt.Errorf("value has type %s; should be %s", value.Type(), argType)
}

func intLike(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	}
	return false
}

func canBeNil(typ reflect.Type) bool {
	switch typ.Kind() {
	case reflect.Chan, reflect.Func, reflect.Interface, reflect.Map, reflect.Pointer, reflect.Slice:
		return true
	case reflect.Struct:
		return typ == reflect.TypeFor[reflect.Value]()
	}
	return false
}

func indirect(v reflect.Value) (rv reflect.Value, isNil bool) {
	for ; v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface; v = v.Elem() {
		if v.IsNil() {
			return v, true
		}
	}
	return v, false
}

func indirectInterface(v reflect.Value) reflect.Value {
	if v.Kind() != reflect.Interface {
		return v
	}
	if v.IsNil() {
		return reflect.Value{}
	}
	return v.Elem()
}
