// Package python holds the Python packages that ship inside the hornbeam binary:
// hornbeam_erlang, hornbeam_ml, hornbeam_dist and hornbeam_dag, and the host's own
// _hornbeam_web (the Python side of serving apps).
package python

import "embed"

// Packages is the tree of embedded Python packages, rooted at this directory.
//
//go:embed hornbeam_erlang/*.py hornbeam_erlang/*.pyi hornbeam_erlang/py.typed hornbeam_ml/*.py hornbeam_ml/py.typed hornbeam_dist/*.py hornbeam_dist/py.typed hornbeam_dag/*.py hornbeam_dag/py.typed _hornbeam_web/*.py
var Packages embed.FS
