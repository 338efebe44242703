package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/vpc-cni/vpc-cni/pkg/eniconfig"
)

// The client talks to the API server through client-go's REST client and
// informers only, typed by NewScheme. Not through a generic client over
// client-go's full scheme: linking that registers every built-in API group
// at start-up, which cost ipamd about 10 MB of RSS and 15 MB of binary.

// apiResource is one API resource the client reads or writes.
type apiResource struct {
	gv         schema.GroupVersion
	plural     string
	namespaced bool
	newObj     func() runtime.Object
}

func (r apiResource) groupResource() schema.GroupResource {
	return r.gv.WithResource(r.plural).GroupResource()
}

var (
	nodesRes      = apiResource{corev1.SchemeGroupVersion, "nodes", false, func() runtime.Object { return &corev1.Node{} }}
	podsRes       = apiResource{corev1.SchemeGroupVersion, "pods", true, func() runtime.Object { return &corev1.Pod{} }}
	eventsRes     = apiResource{eventsv1.SchemeGroupVersion, "events", true, func() runtime.Object { return &eventsv1.Event{} }}
	eniConfigsRes = apiResource{eniconfig.GroupVersion, "eniconfigs", false, func() runtime.Object { return &eniconfig.ENIConfig{} }}
	cniNodesRes   = apiResource{CNINodeGroupVersion, "cninodes", false, func() runtime.Object { return &CNINode{} }}
)

// api holds one REST client per group version.
type api struct {
	clients map[schema.GroupVersion]*rest.RESTClient
}

func newAPI(base *rest.Config, hc *http.Client, scheme *runtime.Scheme) (*api, error) {
	a := &api{clients: map[schema.GroupVersion]*rest.RESTClient{}}
	codecs := serializer.NewCodecFactory(scheme).WithoutConversion()
	for _, r := range []apiResource{nodesRes, eventsRes, eniConfigsRes, cniNodesRes} {
		rc := rest.CopyConfig(base)
		gv := r.gv
		rc.GroupVersion = &gv
		rc.APIPath = "/apis"
		if gv.Group == "" {
			rc.APIPath = "/api"
		}
		rc.NegotiatedSerializer = codecs
		c, err := rest.RESTClientForConfigAndClient(rc, hc)
		if err != nil {
			return nil, fmt.Errorf("k8s REST client for %s: %w", gv, err)
		}
		a.clients[gv] = c
	}
	return a, nil
}

func (a *api) client(r apiResource) *rest.RESTClient { return a.clients[r.gv] }

// get reads an object live.
func (a *api) get(ctx context.Context, r apiResource, namespace, name string, into runtime.Object) error {
	return a.client(r).Get().NamespaceIfScoped(namespace, r.namespaced).Resource(r.plural).Name(name).Do(ctx).Into(into)
}

// patch patches an object live.
func (a *api) patch(ctx context.Context, r apiResource, namespace, name string, pt types.PatchType, body []byte) error {
	return a.client(r).Patch(pt).NamespaceIfScoped(namespace, r.namespaced).Resource(r.plural).Name(name).Body(body).Do(ctx).Error()
}

// create creates obj live.
func (a *api) create(ctx context.Context, r apiResource, namespace string, obj runtime.Object) error {
	return a.client(r).Post().NamespaceIfScoped(namespace, r.namespaced).Resource(r.plural).Body(obj).Do(ctx).Error()
}

// serverVersion asks GET /version, bounded by timeout.
func (a *api) serverVersion(ctx context.Context, timeout time.Duration) (version.Info, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var v version.Info
	body, err := a.client(nodesRes).Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return v, fmt.Errorf("GET /version: %w", err)
	}
	return v, nil
}

// informer is a cache of the objects of one resource that match a field
// selector (this node's), trimmed by transform.
type informer struct {
	res apiResource
	inf toolscache.SharedIndexInformer
}

func (a *api) newInformer(r apiResource, field fields.Selector, transform toolscache.TransformFunc) (*informer, error) {
	lw := toolscache.NewFilteredListWatchFromClient(a.client(r), r.plural, metav1.NamespaceAll, func(o *metav1.ListOptions) {
		o.FieldSelector = field.String()
	})
	inf := toolscache.NewSharedIndexInformer(lw, r.newObj(), 0, toolscache.Indexers{})
	if err := inf.SetTransform(func(obj any) (any, error) {
		if transform != nil {
			return transform(obj)
		}
		if o, ok := obj.(metav1.Object); ok {
			o.SetManagedFields(nil) // large, never read
		}
		return obj, nil
	}); err != nil {
		return nil, fmt.Errorf("k8s informer for %s: %w", r.plural, err)
	}
	return &informer{res: r, inf: inf}, nil
}

// get returns a copy of the cached object, or a NotFound error.
func (i *informer) get(namespace, name string) (runtime.Object, error) {
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	obj, ok, err := i.inf.GetIndexer().GetByKey(key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apierrors.NewNotFound(i.res.groupResource(), name)
	}
	return obj.(runtime.Object).DeepCopyObject(), nil
}

// list returns copies of every cached object.
func (i *informer) list() []runtime.Object {
	items := i.inf.GetStore().List()
	out := make([]runtime.Object, 0, len(items))
	for _, o := range items {
		out = append(out, o.(runtime.Object).DeepCopyObject())
	}
	return out
}
