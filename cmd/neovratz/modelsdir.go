package main

import (
	"path/filepath"

	"github.com/neovratz/neovratz/internal/modelstore"
)

// modelsDirConfig locates the models directory the way serve does: --models-dir, or models in
// --data-dir. pull, models, rm and run --local share it, so they agree with serve on where
// models live.
type modelsDirConfig struct {
	DataDir   string
	ModelsDir string
}

func (c *modelsDirConfig) define(f *flagSet) {
	f.String(&c.DataDir, "data-dir", "~/.neovratz", "data directory, whose models subdirectory holds the models unless --models-dir is set", nil)
	f.String(&c.ModelsDir, "models-dir", "", "directory of model files", nil)
	f.showDefault("models-dir", "<data-dir>/models")
}

// dir returns the models directory, absolute.
func (c modelsDirConfig) dir(m *Main) (string, error) {
	if c.ModelsDir != "" {
		d, err := expandHome(c.ModelsDir, m.homeDir)
		if err != nil {
			return "", usageErrorf("--models-dir: %v", err)
		}
		return d, nil
	}
	d, err := expandHome(c.DataDir, m.homeDir)
	if err != nil {
		return "", usageErrorf("--data-dir: %v", err)
	}
	return filepath.Join(d, "models"), nil
}

// store opens the models directory.
func (c modelsDirConfig) store(m *Main) (*modelstore.Store, error) {
	d, err := c.dir(m)
	if err != nil {
		return nil, err
	}
	return modelstore.New(d), nil
}
