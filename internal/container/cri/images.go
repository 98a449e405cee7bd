package cri

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/container/image"
)

// imageService implements runtimeapi.ImageServiceServer on the store.
type imageService struct {
	runtimeapi.UnimplementedImageServiceServer
	s *Server
}

func toCRIImage(img *image.Image) *runtimeapi.Image {
	out := &runtimeapi.Image{
		Id: img.ID, RepoTags: img.RepoTags, RepoDigests: img.RepoDigests,
		Size: uint64(img.Size), Spec: &runtimeapi.ImageSpec{Image: img.ID},
	}
	if img.Config != nil {
		user := img.Config.Config.User
		name, _, _ := strings.Cut(user, ":")
		if n, err := strconv.ParseInt(name, 10, 64); err == nil {
			out.Uid = &runtimeapi.Int64Value{Value: n}
		} else if name != "" {
			out.Username = name
		}
	}
	return out
}

func (i *imageService) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	want := req.GetFilter().GetImage().GetImage()
	var match *image.Image
	if want != "" {
		img, err := i.s.images.Get(want)
		if errors.Is(err, image.ErrNotFound) {
			return &runtimeapi.ListImagesResponse{}, nil
		}
		if err != nil {
			return nil, err
		}
		match = img
	}
	resp := &runtimeapi.ListImagesResponse{}
	for _, img := range i.s.images.List() {
		if match == nil || img.ID == match.ID {
			resp.Images = append(resp.Images, toCRIImage(img))
		}
	}
	return resp, nil
}

func (i *imageService) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	img, err := i.s.images.Get(req.GetImage().GetImage())
	if errors.Is(err, image.ErrNotFound) {
		return &runtimeapi.ImageStatusResponse{}, nil // the CRI way to say "not present"
	}
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ImageStatusResponse{Image: toCRIImage(img)}
	if req.GetVerbose() {
		data, _ := json.Marshal(map[string]any{"config": img.Config, "layers": img.Layers, "stored": img.Stored})
		resp.Info = map[string]string{"info": string(data)}
	}
	return resp, nil
}

func (i *imageService) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	var auth *image.AuthConfig
	if a := req.GetAuth(); a != nil {
		auth = &image.AuthConfig{Username: a.GetUsername(), Password: a.GetPassword(), Auth: a.GetAuth(), IdentityToken: a.GetIdentityToken(), RegistryToken: a.GetRegistryToken()}
	}
	img, err := i.s.images.Pull(ctx, req.GetImage().GetImage(), auth, nil)
	if err != nil {
		i.s.metrics.pulls.WithLabelValues("failure").Inc()
		return nil, err
	}
	i.s.metrics.pulls.WithLabelValues("success").Inc()
	return &runtimeapi.PullImageResponse{ImageRef: img.ID}, nil
}

// collector is an image store that can free what no image uses any more.
type collector interface {
	GC() (image.GCResult, error)
}

func (i *imageService) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	err := i.s.images.Remove(req.GetImage().GetImage())
	if err != nil && !errors.Is(err, image.ErrNotFound) {
		return nil, err
	}
	// Free the removed image's blobs and layers, as containerd's CRI does,
	// so the kubelet's image garbage collection frees disk. In the
	// background: the call need not wait for the disk.
	if c, ok := i.s.images.(collector); ok && err == nil {
		go func() {
			if _, err := c.GC(); err != nil {
				i.s.log.Warn("image garbage collection after RemoveImage", "err", err)
			}
		}()
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}

func (i *imageService) ImageFsInfo(ctx context.Context, req *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	var used uint64
	for _, img := range i.s.images.List() {
		used += uint64(img.Size)
	}
	var inodes uint64
	root := i.s.cfg.ImageRoot
	if root != "" {
		var st syscall.Statfs_t
		if syscall.Statfs(root, &st) == nil {
			inodes = st.Files - st.Ffree
		}
	}
	fs := &runtimeapi.FilesystemUsage{
		Timestamp: time.Now().UnixNano(), FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: root},
		UsedBytes: &runtimeapi.UInt64Value{Value: used}, InodesUsed: &runtimeapi.UInt64Value{Value: inodes},
	}
	return &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{fs}}, nil
}
