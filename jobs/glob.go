package jobs

import (
	"path"

	"github.com/ferryio/ferry/filter"
)

func pathMatch(pattern, name string) (bool, error) { return path.Match(pattern, name) }

// MatchGlob reports whether rel (a "/"-separated relative path) matches the
// glob g; it is filter.MatchGlob, kept for callers of this package.
func MatchGlob(g, rel string) bool { return filter.MatchGlob(g, rel) }
