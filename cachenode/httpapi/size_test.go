package httpapi

import "testing"

func TestHumanSize(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0B"}, {5120, "5120B"}, {5121, "5.00KB"}, {77542, "75.72KB"},
		{5 << 20, "5120.00KB"}, {5<<20 + 1<<10, "5.00MB"}, {3 << 30, "3072.00MB"}, {10 << 40, "10.00TB"},
	} {
		if got := humanSize(tc.n); got != tc.want {
			t.Errorf("humanSize(%d) = %s, want %s", tc.n, got, tc.want)
		}
	}
}
