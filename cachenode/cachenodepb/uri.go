package cachenodepb

import "unicode/utf8"

// URI returns the file's URI byte for byte, from uri_bytes when it is set.
func (x *FileRef) URI() string { return joinURI(x.GetUri(), x.GetUriBytes()) }

// SetURI sets the file's URI: in uri when it is valid UTF-8, else in
// uri_bytes with uri left empty (a node that does not know uri_bytes then
// fails the file instead of loading another name).
func (x *FileRef) SetURI(uri string) {
	x.Uri, x.UriBytes = splitURI(uri)
}

// URI returns the result's URI byte for byte, from uri_bytes when it is set.
func (x *FileResult) URI() string { return joinURI(x.GetUri(), x.GetUriBytes()) }

// SetURI sets the result's URI as FileRef.SetURI does.
func (x *FileResult) SetURI(uri string) {
	x.Uri, x.UriBytes = splitURI(uri)
}

// URI returns the requested URI byte for byte.
func (x *ReadRangeRequest) URI() string { return joinURI(x.GetUri(), x.GetUriBytes()) }

// SetURI sets the requested URI as FileRef.SetURI does.
func (x *ReadRangeRequest) SetURI(uri string) { x.Uri, x.UriBytes = splitURI(uri) }

// URI returns the requested URI byte for byte.
func (x *StatRequest) URI() string { return joinURI(x.GetUri(), x.GetUriBytes()) }

// SetURI sets the requested URI as FileRef.SetURI does.
func (x *StatRequest) SetURI(uri string) { x.Uri, x.UriBytes = splitURI(uri) }

// URI returns the file's URI byte for byte.
func (x *FileInfo) URI() string { return joinURI(x.GetUri(), x.GetUriBytes()) }

// SetURI sets the file's URI as FileRef.SetURI does.
func (x *FileInfo) SetURI(uri string) { x.Uri, x.UriBytes = splitURI(uri) }

// Prefix returns the prefix to evict byte for byte.
func (x *EvictRequest) Prefix() string { return joinURI(x.GetUriPrefix(), x.GetUriPrefixBytes()) }

// SetPrefix sets the prefix to evict as FileRef.SetURI sets a URI.
func (x *EvictRequest) SetPrefix(prefix string) { x.UriPrefix, x.UriPrefixBytes = splitURI(prefix) }

func joinURI(s string, b []byte) string {
	if len(b) > 0 {
		return string(b)
	}
	return s
}

func splitURI(uri string) (string, []byte) {
	if utf8.ValidString(uri) {
		return uri, nil
	}
	return "", []byte(uri)
}
