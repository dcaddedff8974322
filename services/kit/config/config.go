// Package config fills a service's configuration struct from the environment.
//
// Fields carry `env:"NAME"`, optionally `default:"…"`, `required:"true"`, `example:"…"` (shown in
// errors) and `oneof:"a,b,c"`. Nested structs without an env tag are filled recursively, so a
// service embeds Base and adds its own fields. Supported kinds: string, bool, ints, floats,
// time.Duration and []string (comma-separated).
package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Base is the environment every runtime sets for every service (docs/ARCHITECTURE.md).
type Base struct {
	ServiceName     string        `env:"SERVICE_NAME" example:"orders"`
	InstanceID      string        `env:"INSTANCE_ID" example:"orders-1"`
	HTTPAddr        string        `env:"HTTP_ADDR" default:"127.0.0.1:0" example:"127.0.0.1:41234"`
	AdvertiseAddr   string        `env:"ADVERTISE_ADDR" example:"127.0.0.1:41234"`
	EtcdEndpoints   []string      `env:"ETCD_ENDPOINTS" example:"http://127.0.0.1:2379"`
	NATSURL         string        `env:"NATS_URL" example:"nats://127.0.0.1:4222"`
	DatabaseURL     string        `env:"DATABASE_URL" example:"postgres://orders:pw@127.0.0.1:5432/orders?sslmode=disable"`
	OTLPEndpoint    string        `env:"OTEL_EXPORTER_OTLP_ENDPOINT" example:"http://127.0.0.1:4318"`
	LogLevel        string        `env:"LOG_LEVEL" default:"info" oneof:"debug,info,warn,error"`
	RegistryTTL     time.Duration `env:"REGISTRY_TTL" default:"5s" example:"5s"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" default:"10s" example:"10s"`
	MaxBodyBytes    int64         `env:"MAX_BODY_BYTES" default:"1048576" example:"1048576"`
	UpstreamProxies []string      `env:"UPSTREAM_PROXIES" example:"inventory=127.0.0.1:41001"`
}

var durationType = reflect.TypeFor[time.Duration]()

// Load fills dst (a pointer to a struct) from the process environment.
func Load(dst any) error {
	return LoadFrom(os.LookupEnv, dst)
}

// LoadFrom is Load with an explicit lookup function, for tests and for callers that layer sources.
// All problems are reported together so one start shows every bad variable.
func LoadFrom(lookup func(string) (string, bool), dst any) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: Load needs a pointer to a struct, got %T", dst)
	}
	var errs []error
	fill(lookup, v.Elem(), &errs)
	return errors.Join(errs...)
}

func fill(lookup func(string) (string, bool), v reflect.Value, errs *[]error) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		name, ok := f.Tag.Lookup("env")
		if !ok {
			if fv.Kind() == reflect.Struct && f.Type != durationType {
				fill(lookup, fv, errs)
			}
			continue
		}
		raw, set := lookup(name)
		raw = strings.TrimSpace(raw)
		if !set || raw == "" {
			def, hasDef := f.Tag.Lookup("default")
			switch {
			case hasDef:
				raw = def
			case f.Tag.Get("required") == "true":
				*errs = append(*errs, fmt.Errorf("config: %s is required (for example %s=%s)", name, name, example(f)))
				continue
			default:
				continue
			}
		}
		if oneof := f.Tag.Get("oneof"); oneof != "" && !contains(strings.Split(oneof, ","), raw) {
			*errs = append(*errs, fmt.Errorf("config: %s=%q is not one of %s", name, raw, oneof))
			continue
		}
		if err := set1(fv, raw); err != nil {
			*errs = append(*errs, fmt.Errorf("config: %s=%q: %v (for example %s=%s)", name, raw, err, name, example(f)))
		}
	}
}

func set1(fv reflect.Value, raw string) error {
	if fv.Type() == durationType {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return errors.New("not a duration")
		}
		if d < 0 {
			return errors.New("must not be negative")
		}
		fv.SetInt(int64(d))
		return nil
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return errors.New("not a boolean")
		}
		fv.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, fv.Type().Bits())
		if err != nil {
			return errors.New("not an integer")
		}
		fv.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(raw, 10, fv.Type().Bits())
		if err != nil {
			return errors.New("not a non-negative integer")
		}
		fv.SetUint(n)
	case reflect.Float32, reflect.Float64:
		x, err := strconv.ParseFloat(raw, fv.Type().Bits())
		if err != nil {
			return errors.New("not a number")
		}
		fv.SetFloat(x)
	case reflect.Slice:
		if fv.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported field type %s", fv.Type())
		}
		var parts []string
		for p := range strings.SplitSeq(raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		fv.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("unsupported field type %s", fv.Type())
	}
	return nil
}

func example(f reflect.StructField) string {
	if ex := f.Tag.Get("example"); ex != "" {
		return ex
	}
	if oneof := f.Tag.Get("oneof"); oneof != "" {
		return strings.Split(oneof, ",")[0]
	}
	if f.Type == durationType {
		return "5s"
	}
	switch f.Type.Kind() {
	case reflect.Bool:
		return "true"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "10"
	case reflect.Float32, reflect.Float64:
		return "1.5"
	case reflect.Slice:
		return "a,b"
	}
	return "value"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
