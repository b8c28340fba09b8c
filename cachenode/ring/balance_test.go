package ring

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

// shares places keys on n nodes named node-1..n with vnodes points each
// and returns each node's share of the keys, largest first.
func shares(n, vnodes, keys int) []float64 {
	var members []Member
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("node-%d", i)
		members = append(members, Member{ID: id, Identity: IdentityFromName(id)})
	}
	r := New(members, vnodes)
	count := map[string]int{}
	for k := range keys {
		m, _ := r.Owner(fmt.Sprintf("s3://bucket/data/part-%06d.parquet", k))
		count[m.ID]++
	}
	out := make([]float64, 0, n)
	for _, m := range members {
		out = append(out, float64(count[m.ID])/float64(keys))
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(out)))
	return out
}

// TestBalance shows how evenly keys spread with the Alluxio default of 5
// virtual nodes per node and with 2,000 (the figures the README quotes),
// and checks that 2,000 keeps every node within 15 % of its fair share.
func TestBalance(t *testing.T) {
	const keys = 100_000
	for _, n := range []int{3, 10} {
		for _, v := range []int{DefaultVirtualNodes, 2000} {
			s := shares(n, v, keys)
			var parts []string
			for _, x := range s {
				parts = append(parts, fmt.Sprintf("%.1f", 100*x))
			}
			t.Logf("%2d nodes, %4d virtual nodes: largest %.2f× the fair share; shares %% %s", n, v, s[0]*float64(n), strings.Join(parts, " / "))
			if v == 2000 && s[0]*float64(n) > 1.15 {
				t.Errorf("%d nodes at %d virtual nodes: the largest node holds %.2f× its fair share", n, v, s[0]*float64(n))
			}
		}
	}
}
