package main

import "github.com/hornbeam-go/hornbeam/pybridge"

func pythonVersion() string { return pybridge.Version() }
