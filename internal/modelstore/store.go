// Package modelstore is the models directory: the model files neovratz serves, each known by a
// name (its file name without the extension), with the facts a person picks a model by —
// architecture, parameter count, quantization, size, context length — read from the file's own
// metadata (GGUF) or header (safetensors), never from a side database that could drift from the
// files. Files may be dropped in or deleted by hand; the store is whatever the directory holds.
//
// A GGUF model split into shards (name-00001-of-00003.gguf, as llama.cpp's gguf-split writes
// them) is one model: its facts are summed over the shards and removing it removes every shard.
package modelstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Format is a model file format.
type Format string

// The formats the store recognises, by file extension.
const (
	FormatGGUF        Format = "gguf"        // .gguf: llama.cpp's format, for language models
	FormatSafetensors Format = "safetensors" // .safetensors: single-file image checkpoints
)

// PartialSuffix ends the name of a download in progress (see package pull); the store skips
// such files when listing, and removing a model removes its partial download too.
const PartialSuffix = ".partial"

// Model is one model in the directory.
type Model struct {
	// Name is what clients ask for: the path below the directory without the extension (nor a
	// shard's -00001-of-00003), with forward slashes.
	Name   string
	Format Format
	// Path is the file to load: the first shard of a split model.
	Path string
	// Files are every file of the model, Path first.
	Files    []string
	Size     int64     // bytes, over every file
	Modified time.Time // the newest file's modification time

	// Facts from the file's metadata; zero where the file does not say.
	Title         string // the name the file gives itself (general.name, modelspec.title)
	Architecture  string // llama, qwen2, stable-diffusion-xl, …
	Parameters    uint64 // counted from the tensor shapes
	Quantization  string // Q4_K_M, F16, …: the file type, or the type most of the weights have
	ContextLength uint64 // the context the model was trained for (GGUF <arch>.context_length)

	// Err is why the metadata could not be read (a truncated or foreign file). The model is
	// still listed, so that a person sees it and can remove it.
	Err error
}

// ParamsString writes the parameter count the way model cards do (494M, 7.6B), or "" when unknown.
func (m Model) ParamsString() string { return formatParams(m.Parameters) }

// ErrNotFound matches the error of Resolve and Remove for a name the directory does not hold.
var ErrNotFound = errors.New("model not found")

// NotFoundError is a name the directory does not hold, with the names that come close.
type NotFoundError struct {
	Name    string
	Dir     string
	Similar []string // names that contain the asked one, or that it contains
}

func (e *NotFoundError) Error() string {
	msg := fmt.Sprintf("model %q not found in %s", e.Name, e.Dir)
	if len(e.Similar) > 0 {
		msg += " (did you mean " + strings.Join(e.Similar, ", ") + "?)"
	}
	return msg
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// AmbiguousError is a name that matches several models only when case is ignored.
type AmbiguousError struct {
	Name    string
	Matches []string
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("model %q is ambiguous: it could be %s", e.Name, strings.Join(e.Matches, ", "))
}

// Store is a models directory. Its methods read the directory afresh on every call.
type Store struct {
	dir string
}

// New returns the store of dir, which need not exist yet (it then holds no model).
func New(dir string) *Store { return &Store{dir: dir} }

// Dir returns the directory.
func (s *Store) Dir() string { return s.dir }

// List returns every model in the directory and its subdirectories, sorted by name. A file
// whose metadata cannot be read is listed with Err set; only a failure to read the directory
// itself is an error.
func (s *Store) List() ([]Model, error) {
	groups, err := s.scan()
	if err != nil {
		return nil, err
	}
	models := make([]Model, 0, len(groups))
	for _, g := range groups {
		models = append(models, g.inspect())
	}
	return models, nil
}

// Resolve returns the model a name refers to: its exact name, the name with its extension
// (model.gguf), or the name with other letter case when only one model matches that way.
func (s *Store) Resolve(name string) (Model, error) {
	g, err := s.find(name)
	if err != nil {
		return Model{}, err
	}
	return g.inspect(), nil
}

// Remove deletes the model a name refers to (as Resolve finds it): every file of it and any
// partial download of those files. It returns what it removed.
func (s *Store) Remove(name string) (Model, error) {
	g, err := s.find(name)
	if err != nil {
		return Model{}, err
	}
	m := Model{Name: g.name, Format: g.format, Path: g.files[0].path}
	for _, f := range g.files {
		if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return m, fmt.Errorf("remove %s: %w", m.Name, err)
		}
		m.Files = append(m.Files, f.path)
		m.Size += f.size
		if err := os.Remove(f.path + PartialSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return m, fmt.Errorf("remove %s: %w", m.Name, err)
		}
	}
	return m, nil
}

// Inspect reads the facts of one model file outside any store (a path given on the command
// line, a file just downloaded). Its Name is the file name without the extension.
func Inspect(path string) (Model, error) {
	format, ok := formatOf(path)
	if !ok {
		return Model{}, fmt.Errorf("%s: not a model file (want .gguf or .safetensors)", path)
	}
	st, err := os.Stat(path)
	if err != nil {
		return Model{}, err
	}
	base := filepath.Base(path)
	g := group{name: strings.TrimSuffix(base, filepath.Ext(base)), format: format,
		files: []file{{path: path, size: st.Size(), modified: st.ModTime()}}}
	m := g.inspect()
	return m, m.Err
}

func (s *Store) find(name string) (group, error) {
	groups, err := s.scan()
	if err != nil {
		return group{}, err
	}
	name = filepath.ToSlash(strings.TrimSpace(name))
	for _, try := range []string{name, trimModelExt(name)} {
		if i := slices.IndexFunc(groups, func(g group) bool { return g.name == try }); i >= 0 {
			return groups[i], nil
		}
	}
	var fold []group
	for _, g := range groups {
		if strings.EqualFold(g.name, name) || strings.EqualFold(g.name, trimModelExt(name)) {
			fold = append(fold, g)
		}
	}
	switch len(fold) {
	case 1:
		return fold[0], nil
	case 0:
		e := &NotFoundError{Name: name, Dir: s.dir}
		lower := strings.ToLower(trimModelExt(name))
		for _, g := range groups {
			n := strings.ToLower(g.name)
			if lower != "" && (strings.Contains(n, lower) || strings.Contains(lower, n)) {
				e.Similar = append(e.Similar, g.name)
			}
		}
		return group{}, e
	}
	e := &AmbiguousError{Name: name}
	for _, g := range fold {
		e.Matches = append(e.Matches, g.name)
	}
	return group{}, e
}

// formatOf tells a model file's format by its extension, in any letter case.
func formatOf(path string) (Format, bool) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".gguf":
		return FormatGGUF, true
	case ".safetensors":
		return FormatSafetensors, true
	}
	return "", false
}

func trimModelExt(name string) string {
	if _, ok := formatOf(name); ok {
		return strings.TrimSuffix(name, filepath.Ext(name))
	}
	return name
}
