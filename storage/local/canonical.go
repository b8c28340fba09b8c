package local

import (
	"github.com/ferryio/ferry/storage"
)

var _ storage.Canonicalizer = (*Store)(nil)

// Canonical returns the real file:// URI of uri: "." and ".." removed and
// every symbolic link in its longest existing prefix resolved, so that a
// storage mount is checked against where a name really leads.
func (s *Store) Canonical(uri string) (string, error) {
	p, err := s.path("resolve", uri)
	if err != nil {
		return "", err
	}
	real, err := evalExisting(p)
	if err != nil {
		return "", storage.NewError("resolve", uri, storage.ErrInvalidPath, err)
	}
	return "file://" + real, nil
}
