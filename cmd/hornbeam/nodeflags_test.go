package main

import (
	"maps"
	"testing"
)

func TestParseCapabilities(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want map[string]float64
		bad  bool
	}{
		{in: nil, want: nil},
		{in: []string{"gpu=1", "cpu=4", "memory=16000"}, want: map[string]float64{"gpu": 1, "cpu": 4, "memory": 16000}},
		{in: []string{" fpga = 0.5 "}, want: map[string]float64{"fpga": 0.5}},
		{in: []string{"gpu=1", "gpu=2"}, want: map[string]float64{"gpu": 2}},
		{in: []string{"gpu"}, bad: true},
		{in: []string{"=1"}, bad: true},
		{in: []string{"gpu=-1"}, bad: true},
		{in: []string{"gpu=many"}, bad: true},
		{in: []string{"gpu=NaN"}, bad: true},
		{in: []string{"gpu=+Inf"}, bad: true},
	} {
		got, err := parseCapabilities(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: no error, got %v", tc.in, got)
			}
			continue
		}
		if err != nil || !maps.Equal(got, tc.want) {
			t.Errorf("%q: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}
