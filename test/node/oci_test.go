package node

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// unpackOCI extracts the root filesystem of the single image in the OCI
// archive at archive into dir, applying its layers in order, and returns
// the image's config (entrypoint and environment).
func unpackOCI(archive, dir string) (ociConfig, error) {
	blobs, err := readArchive(archive)
	if err != nil {
		return ociConfig{}, err
	}
	var index struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	if err := json.Unmarshal(blobs["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		return ociConfig{}, fmt.Errorf("%s: index.json must list exactly one manifest (err %v)", archive, err)
	}
	var manifest struct {
		Config struct{ Digest string } `json:"config"`
		Layers []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(blobs[blobPath(index.Manifests[0].Digest)], &manifest); err != nil {
		return ociConfig{}, fmt.Errorf("%s: manifest: %w", archive, err)
	}
	var cfg struct {
		Config ociConfig `json:"config"`
	}
	if err := json.Unmarshal(blobs[blobPath(manifest.Config.Digest)], &cfg); err != nil {
		return ociConfig{}, fmt.Errorf("%s: config: %w", archive, err)
	}
	for _, l := range manifest.Layers {
		data, ok := blobs[blobPath(l.Digest)]
		if !ok {
			return ociConfig{}, fmt.Errorf("%s: layer %s missing", archive, l.Digest)
		}
		var r io.Reader = bytes.NewReader(data)
		if strings.HasSuffix(l.MediaType, "gzip") {
			if r, err = gzip.NewReader(r); err != nil {
				return ociConfig{}, fmt.Errorf("%s: layer %s: %w", archive, l.Digest, err)
			}
		}
		if err := extractLayer(tar.NewReader(r), dir); err != nil {
			return ociConfig{}, fmt.Errorf("%s: layer %s: %w", archive, l.Digest, err)
		}
	}
	return cfg.Config, nil
}

type ociConfig struct {
	Entrypoint []string `json:"Entrypoint"`
	Cmd        []string `json:"Cmd"`
	Env        []string `json:"Env"`
	WorkingDir string   `json:"WorkingDir"`
}

func blobPath(digest string) string { return "blobs/" + strings.Replace(digest, ":", "/", 1) }

func readArchive(p string) (map[string][]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out[path.Clean(h.Name)] = b
	}
}

// extractLayer writes a layer's files below dir. Whiteouts are applied;
// nothing is written outside dir.
func extractLayer(tr *tar.Reader, dir string) error {
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean("/" + h.Name)
		dst := filepath.Join(dir, name)
		base := path.Base(name)
		if strings.HasPrefix(base, ".wh.") {
			_ = os.RemoveAll(filepath.Join(filepath.Dir(dst), strings.TrimPrefix(base, ".wh."))) // may not exist
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, os.FileMode(h.Mode).Perm()); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			_ = os.Remove(dst) // a lower layer's file
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode).Perm())
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			_ = os.Remove(dst)
			if err := os.Symlink(h.Linkname, dst); err != nil {
				return err
			}
		case tar.TypeLink:
			_ = os.Remove(dst)
			if err := os.Link(filepath.Join(dir, path.Clean("/"+h.Linkname)), dst); err != nil {
				return err
			}
		}
	}
}
