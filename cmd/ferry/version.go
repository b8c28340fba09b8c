package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set at build time, e.g.
//
//	go build -ldflags "-X main.version=v1.2.0 -X main.commit=$(git rev-parse HEAD)" ./cmd/ferry
//
// When they are empty the build information Go records is used: the module
// version and the VCS revision (absent with -buildvcs=false, then the commit
// is printed as unknown).
var (
	version string
	commit  string
)

// versionInfo is what `ferry version` and `ferry --version` print.
type versionInfo struct {
	Version        string
	Commit         string
	GoVersion      string
	TemporalSDK    string
	TemporalServer string
}

// currentVersion reads the versions from the -X values and the binary's
// build information.
func currentVersion() versionInfo {
	bi, _ := debug.ReadBuildInfo()
	return versionFrom(bi, version, commit)
}

// develVersion is the version of a build that was given none.
const develVersion = "(devel)"

// unknownCommit is printed when neither -X main.commit nor the VCS stamp of
// the build gives the commit.
const unknownCommit = "unknown (built without VCS information; set it with -ldflags -X main.commit=...)"

// versionFrom computes versionInfo from build information (nil: none) and
// the -X values, which win when set.
func versionFrom(bi *debug.BuildInfo, v, c string) versionInfo {
	info := versionInfo{Version: v, Commit: c, GoVersion: runtime.Version(), TemporalSDK: "unknown", TemporalServer: "unknown"}
	var revision, modified string
	if bi != nil {
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, d := range bi.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			switch d.Path {
			case "go.temporal.io/sdk":
				info.TemporalSDK = d.Version
			case "go.temporal.io/server":
				info.TemporalServer = d.Version
			}
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
	}
	if info.Version == "" {
		info.Version = develVersion
	}
	if info.Commit == "" {
		switch {
		case revision == "":
			info.Commit = unknownCommit
		case modified == "true":
			info.Commit = revision + " (with uncommitted changes)"
		default:
			info.Commit = revision
		}
	}
	return info
}

// short is the version alone.
func (v versionInfo) short() string { return v.Version }

// String is the full report, one fact per line.
func (v versionInfo) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ferry %s\n", v.Version)
	fmt.Fprintf(&b, "  commit           %s\n", v.Commit)
	fmt.Fprintf(&b, "  Go               %s\n", v.GoVersion)
	fmt.Fprintf(&b, "  Temporal SDK     %s\n", v.TemporalSDK)
	fmt.Fprintf(&b, "  Temporal server  %s (embedded, ferry dev and temporal-dev)\n", v.TemporalServer)
	return b.String()
}
