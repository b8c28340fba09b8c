package jobs

import (
	"path"
	"strings"
)

func pathMatch(pattern, name string) (bool, error) { return path.Match(pattern, name) }

// MatchGlob reports whether rel (a "/"-separated relative path) matches the
// glob g, where "**" stands for any number of whole segments and other
// segments use path.Match syntax.
func MatchGlob(g, rel string) bool {
	return matchSegs(strings.Split(g, "/"), strings.Split(rel, "/"))
}

func matchSegs(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(segs); i++ {
				if matchSegs(pat[1:], segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], segs[0]); !ok {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}
