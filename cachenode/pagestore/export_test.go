package pagestore

// SetSegmentSize makes the store start a new segment every n bytes, so that
// tests see several.
func SetSegmentSize(s *Store, n int64) {
	s.segs.mu.Lock()
	s.segs.maxSize = n
	s.segs.mu.Unlock()
}
