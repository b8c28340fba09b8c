package workflows

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// forbiddenImports are packages whose use in workflow code breaks replay or
// does I/O (STYLE.md §4).
var forbiddenImports = []string{
	"os", "net", "net/http", "math/rand", "math/rand/v2", "crypto/rand", "io/ioutil",
	"github.com/aws", "cloud.google.com", "github.com/colinmarc", "github.com/cockroachdb/pebble",
	"github.com/ferryio/ferry/storage", "github.com/ferryio/ferry/activities",
	"github.com/ferryio/ferry/cachenode/pagestore", "github.com/ferryio/ferry/cachenode/httpapi",
}

// forbiddenCalls are package-level functions workflow code must not call.
var forbiddenCalls = map[string][]string{
	"time": {"Now", "Sleep", "After", "Tick", "NewTimer", "NewTicker", "Since", "Until", "AfterFunc"},
}

// TestDeterministicImports fails when workflow code imports an I/O or
// randomness package, starts a goroutine, uses a native select, or reads the
// clock.
func TestDeterministicImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		aliases := map[string]string{}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbiddenImports {
				if path == bad || strings.HasPrefix(path, strings.TrimSuffix(bad, "/")+"/") || (strings.HasSuffix(bad, "/") && strings.HasPrefix(path, bad)) {
					t.Errorf("%s imports %s: workflow code must stay deterministic and free of I/O", name, path)
				}
			}
			local := filepath.Base(path)
			if imp.Name != nil {
				local = imp.Name.Name
			}
			aliases[local] = path
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.GoStmt:
				t.Errorf("%s: a go statement; use workflow.Go", fset.Position(x.Pos()))
			case *ast.SelectStmt:
				t.Errorf("%s: a native select; use workflow.Selector", fset.Position(x.Pos()))
			case *ast.SelectorExpr:
				if id, ok := x.X.(*ast.Ident); ok {
					for _, fn := range forbiddenCalls[aliases[id.Name]] {
						if x.Sel.Name == fn {
							t.Errorf("%s: %s.%s; use the workflow API", fset.Position(x.Pos()), id.Name, fn)
						}
					}
				}
			}
			return true
		})
	}
}
