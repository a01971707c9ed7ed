//go:build tools

// Package tools pins the skaffold command built from this module. It is never compiled (build
// tag "tools"); it only makes `go mod tidy` keep every dependency skaffold needs in go.mod/go.sum.
package tools

import (
	_ "github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold"
)
