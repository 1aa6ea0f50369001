package modelstore

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// file is one model file found in the directory.
type file struct {
	path     string
	size     int64
	modified time.Time
	shard    int // 1-based shard number of a split GGUF, 0 for a whole file
	shards   int // how many shards the split has
}

// group is the files of one model: a single file, or the shards of a split GGUF.
type group struct {
	name   string
	format Format
	files  []file // sorted by shard
}

// shardName matches the shards llama.cpp's gguf-split writes: name-00001-of-00003.gguf.
var shardName = regexp.MustCompile(`(?i)^(.+)-(\d{5})-of-(\d{5})\.gguf$`)

// scan walks the directory and groups its model files by model name, sorted by name. Hidden
// files and directories and partial downloads are skipped; a directory that does not exist
// holds no model.
func (s *Store) scan() ([]group, error) {
	byName := map[string]*group{}
	err := filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == s.dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if path != s.dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		format, ok := formatOf(path)
		if !ok || !d.Type().IsRegular() && d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed while we looked
		}
		rel, err := filepath.Rel(s.dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		f := file{path: path, size: info.Size(), modified: info.ModTime()}
		name := strings.TrimSuffix(rel, filepath.Ext(rel))
		if m := shardName.FindStringSubmatch(rel); m != nil {
			f.shard, _ = strconv.Atoi(m[2])
			f.shards, _ = strconv.Atoi(m[3])
			name = m[1]
		}
		if info.Mode()&fs.ModeSymlink != 0 { // a link to a model elsewhere: size what it points to
			if target, err := os.Stat(path); err == nil {
				f.size, f.modified = target.Size(), target.ModTime()
			}
		}
		g := byName[name]
		if g == nil {
			g = &group{name: name, format: format}
			byName[name] = g
		}
		g.files = append(g.files, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read models directory: %w", err)
	}
	groups := make([]group, 0, len(byName))
	for _, g := range byName {
		slices.SortFunc(g.files, func(a, b file) int { return cmp.Compare(a.shard, b.shard) })
		groups = append(groups, *g)
	}
	slices.SortFunc(groups, func(a, b group) int { return strings.Compare(a.name, b.name) })
	return groups, nil
}

// inspect returns the model the group is, with its facts read from its files.
func (g group) inspect() Model {
	m := Model{Name: g.name, Format: g.format, Path: g.files[0].path}
	for _, f := range g.files {
		m.Files = append(m.Files, f.path)
		m.Size += f.size
		if f.modified.After(m.Modified) {
			m.Modified = f.modified
		}
	}
	if err := g.complete(); err != nil {
		m.Err = err
		return m
	}
	var err error
	switch g.format {
	case FormatGGUF:
		err = readGGUF(&m)
	case FormatSafetensors:
		err = readSafetensors(&m)
	}
	if err != nil {
		m.Err = err
	}
	return m
}

// complete reports a split model that lacks shards, or a file name mixing whole and split.
func (g group) complete() error {
	n := g.files[0].shards
	if n == 0 {
		if len(g.files) > 1 {
			return fmt.Errorf("%d files share the model name %q", len(g.files), g.name)
		}
		return nil
	}
	for i, f := range g.files {
		if f.shards != n || f.shard != i+1 {
			return fmt.Errorf("incomplete split model: %d of %d files (shard %05d is missing or misnamed)", len(g.files), n, i+1)
		}
	}
	if len(g.files) != n {
		return fmt.Errorf("incomplete split model: %d of %d files", len(g.files), n)
	}
	return nil
}
