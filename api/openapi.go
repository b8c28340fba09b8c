package api

import _ "embed"

// openAPIDocument is the OpenAPI 3.1 description of every route, written by
// hand so that it reads as documentation; TestOpenAPIListsEveryRoute keeps
// it in step with the routes New registers.
//
//go:embed openapi.json
var openAPIDocument []byte
