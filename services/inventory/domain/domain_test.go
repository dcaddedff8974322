package domain

import (
	"errors"
	"reflect"
	"testing"
)

func TestNormalizeItems(t *testing.T) {
	tests := []struct {
		name    string
		in      []Item
		want    []Item
		wantErr bool
	}{
		{name: "sorted and merged", in: []Item{{"b", 1}, {"a", 2}, {"b", 3}}, want: []Item{{"a", 2}, {"b", 4}}},
		{name: "single", in: []Item{{"a", 1}}, want: []Item{{"a", 1}}},
		{name: "empty", in: nil, wantErr: true},
		{name: "zero quantity", in: []Item{{"a", 0}}, wantErr: true},
		{name: "negative quantity", in: []Item{{"a", -1}}, wantErr: true},
		{name: "blank product", in: []Item{{" ", 1}}, wantErr: true},
		{name: "too much", in: []Item{{"a", MaxQuantity}, {"a", 1}}, wantErr: true},
		{name: "too many items", in: make([]Item, MaxItems+1), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeItems(tt.in)
			if tt.wantErr {
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("NormalizeItems = %v, %v; want a validation error", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("NormalizeItems = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestValidateOrderID(t *testing.T) {
	for _, tt := range []struct {
		id string
		ok bool
	}{{"o-1", true}, {"", false}, {"  ", false}, {string(make([]byte, MaxOrderIDLen+1)), false}} {
		if err := ValidateOrderID(tt.id); (err == nil) != tt.ok {
			t.Errorf("ValidateOrderID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
		}
	}
}
