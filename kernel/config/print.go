package config

import (
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// Print writes the effective configuration to w as YAML, in the layout of
// latch.yaml, with every secret masked: master_key, the bootstrap secrets
// and the password inside store.dsn print as "********". The output is for
// reading; loading it back would set those values to the mask.
func (c Config) Print(w io.Writer) error {
	if _, err := io.WriteString(w, "# Effective Latch configuration; secrets are masked.\n"); err != nil {
		return fmt.Errorf("printing config: %w", err)
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return fmt.Errorf("printing config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("printing config: %w", err)
	}
	return nil
}
