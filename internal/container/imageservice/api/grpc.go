package api

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ServiceName is the full gRPC name of the image service.
const ServiceName = "skiff.images.v1.Images"

// Full method names, as interceptors and metrics see them.
const (
	MethodImport = "/" + ServiceName + "/Import"
	MethodPull   = "/" + ServiceName + "/Pull"
	MethodList   = "/" + ServiceName + "/List"
	MethodRemove = "/" + ServiceName + "/Remove"
	MethodGC     = "/" + ServiceName + "/GC"
)

// ImagesServer is the server side of the image service. Embed
// UnimplementedImagesServer to stay compatible with new methods.
type ImagesServer interface {
	Import(grpc.BidiStreamingServer[ImportRequest, ImportResponse]) error
	Pull(*PullRequest, grpc.ServerStreamingServer[PullResponse]) error
	List(context.Context, *ListRequest) (*ListResponse, error)
	Remove(context.Context, *RemoveRequest) (*RemoveResponse, error)
	GC(context.Context, *GCRequest) (*GCResponse, error)
}

// UnimplementedImagesServer answers every method with codes.Unimplemented.
type UnimplementedImagesServer struct{}

var _ ImagesServer = UnimplementedImagesServer{}

func (UnimplementedImagesServer) Import(grpc.BidiStreamingServer[ImportRequest, ImportResponse]) error {
	return status.Error(codes.Unimplemented, "method Import not implemented")
}

func (UnimplementedImagesServer) Pull(*PullRequest, grpc.ServerStreamingServer[PullResponse]) error {
	return status.Error(codes.Unimplemented, "method Pull not implemented")
}

func (UnimplementedImagesServer) List(context.Context, *ListRequest) (*ListResponse, error) {
	return nil, status.Error(codes.Unimplemented, "method List not implemented")
}

func (UnimplementedImagesServer) Remove(context.Context, *RemoveRequest) (*RemoveResponse, error) {
	return nil, status.Error(codes.Unimplemented, "method Remove not implemented")
}

func (UnimplementedImagesServer) GC(context.Context, *GCRequest) (*GCResponse, error) {
	return nil, status.Error(codes.Unimplemented, "method GC not implemented")
}

// RegisterImagesServer registers srv on s (a *grpc.Server, say).
func RegisterImagesServer(s grpc.ServiceRegistrar, srv ImagesServer) {
	s.RegisterService(serviceDesc(), srv)
}

// serviceDesc describes the service to grpc. It is built on each call, not
// kept in a package variable, so nothing can change it under a server.
func serviceDesc() *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: ServiceName,
		HandlerType: (*ImagesServer)(nil),
		Methods: []grpc.MethodDesc{
			{MethodName: "List", Handler: unary(MethodList, ImagesServer.List)},
			{MethodName: "Remove", Handler: unary(MethodRemove, ImagesServer.Remove)},
			{MethodName: "GC", Handler: unary(MethodGC, ImagesServer.GC)},
		},
		Streams: []grpc.StreamDesc{
			{StreamName: "Import", Handler: importHandler, ServerStreams: true, ClientStreams: true},
			{StreamName: "Pull", Handler: pullHandler, ServerStreams: true},
		},
		Metadata: "internal/container/imageservice/api/images.proto",
	}
}

// unary makes the grpc handler of a unary method: decode the request, then
// call the method through the server's interceptor, if any.
func unary[Req, Resp any](fullMethod string, call func(ImagesServer, context.Context, *Req) (*Resp, error)) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := new(Req)
		if err := dec(in); err != nil {
			return nil, err
		}
		s := srv.(ImagesServer)
		if interceptor == nil {
			return call(s, ctx, in)
		}
		info := &grpc.UnaryServerInfo{Server: srv, FullMethod: fullMethod}
		return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
			return call(s, ctx, req.(*Req))
		})
	}
}

func importHandler(srv any, stream grpc.ServerStream) error {
	return srv.(ImagesServer).Import(&grpc.GenericServerStream[ImportRequest, ImportResponse]{ServerStream: stream})
}

func pullHandler(srv any, stream grpc.ServerStream) error {
	in := new(PullRequest)
	if err := stream.RecvMsg(in); err != nil {
		return err
	}
	return srv.(ImagesServer).Pull(in, &grpc.GenericServerStream[PullRequest, PullResponse]{ServerStream: stream})
}

// ImagesClient is the client side of the image service.
type ImagesClient interface {
	Import(ctx context.Context, opts ...grpc.CallOption) (grpc.BidiStreamingClient[ImportRequest, ImportResponse], error)
	Pull(ctx context.Context, in *PullRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[PullResponse], error)
	List(ctx context.Context, in *ListRequest, opts ...grpc.CallOption) (*ListResponse, error)
	Remove(ctx context.Context, in *RemoveRequest, opts ...grpc.CallOption) (*RemoveResponse, error)
	GC(ctx context.Context, in *GCRequest, opts ...grpc.CallOption) (*GCResponse, error)
}

type imagesClient struct {
	cc grpc.ClientConnInterface
}

// NewImagesClient returns a client of the image service on cc.
func NewImagesClient(cc grpc.ClientConnInterface) ImagesClient { return &imagesClient{cc: cc} }

func (c *imagesClient) Import(ctx context.Context, opts ...grpc.CallOption) (grpc.BidiStreamingClient[ImportRequest, ImportResponse], error) {
	desc := &grpc.StreamDesc{StreamName: "Import", ServerStreams: true, ClientStreams: true}
	stream, err := c.cc.NewStream(ctx, desc, MethodImport, opts...)
	if err != nil {
		return nil, err
	}
	return &grpc.GenericClientStream[ImportRequest, ImportResponse]{ClientStream: stream}, nil
}

func (c *imagesClient) Pull(ctx context.Context, in *PullRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[PullResponse], error) {
	desc := &grpc.StreamDesc{StreamName: "Pull", ServerStreams: true}
	stream, err := c.cc.NewStream(ctx, desc, MethodPull, opts...)
	if err != nil {
		return nil, err
	}
	x := &grpc.GenericClientStream[PullRequest, PullResponse]{ClientStream: stream}
	if err := x.ClientStream.SendMsg(in); err != nil {
		return nil, err
	}
	if err := x.ClientStream.CloseSend(); err != nil {
		return nil, err
	}
	return x, nil
}

func (c *imagesClient) List(ctx context.Context, in *ListRequest, opts ...grpc.CallOption) (*ListResponse, error) {
	out := new(ListResponse)
	if err := c.cc.Invoke(ctx, MethodList, in, out, opts...); err != nil {
		return nil, err
	}
	return out, nil
}

func (c *imagesClient) Remove(ctx context.Context, in *RemoveRequest, opts ...grpc.CallOption) (*RemoveResponse, error) {
	out := new(RemoveResponse)
	if err := c.cc.Invoke(ctx, MethodRemove, in, out, opts...); err != nil {
		return nil, err
	}
	return out, nil
}

func (c *imagesClient) GC(ctx context.Context, in *GCRequest, opts ...grpc.CallOption) (*GCResponse, error) {
	out := new(GCResponse)
	if err := c.cc.Invoke(ctx, MethodGC, in, out, opts...); err != nil {
		return nil, err
	}
	return out, nil
}
