package configs

import (
	_ "embed"
	"os"
)

// Demo is configs/demo.yaml: the sample CRM, an in-process Redis, nothing
// to install. It is what `crmsync serve` runs without --config.
//
//go:embed demo.yaml
var Demo []byte

// Example is configs/example.yaml: every field, documented.
//
//go:embed example.yaml
var Example []byte

// LoadDemo parses the embedded demo config with the process environment.
func LoadDemo() (*Config, error) { return Parse("configs/demo.yaml (embedded)", Demo, os.LookupEnv) }
