package eniconfig

// Keys and names that select a node's ENIConfig.
const (
	// ExternalLabel is set by external tools and beats every other source.
	ExternalLabel = "vpc.amazonaws.com/externalEniConfig"
	// DefaultKey is the default of ENI_CONFIG_LABEL_DEF and ENI_CONFIG_ANNOTATION_DEF.
	DefaultKey = "k8s.amazonaws.com/eniConfig"
	// DefaultName is used when nothing on the node names an ENIConfig.
	DefaultName = "default"
)

// Selector holds the node label and annotation keys configured through
// ENI_CONFIG_LABEL_DEF and ENI_CONFIG_ANNOTATION_DEF. Empty keys mean DefaultKey.
type Selector struct {
	LabelKey      string
	AnnotationKey string
}

// Source says which node field named the ENIConfig (for logs and events).
type Source string

// Sources in precedence order.
const (
	SourceExternalLabel Source = "external label"
	SourceAnnotation    Source = "annotation"
	SourceLabel         Source = "label"
	SourceDefault       Source = "default"
)

// Resolve returns the ENIConfig name for a node with the given labels and
// annotations. First hit wins: label vpc.amazonaws.com/externalEniConfig,
// then the annotation sel.AnnotationKey, then the label sel.LabelKey (often
// topology.kubernetes.io/zone), then "default". A key present with an empty
// value does not count: it cannot name an object.
func Resolve(labels, annotations map[string]string, sel Selector) (name string, source Source, key string) {
	annKey, labelKey := sel.AnnotationKey, sel.LabelKey
	if annKey == "" {
		annKey = DefaultKey
	}
	if labelKey == "" {
		labelKey = DefaultKey
	}
	if v := labels[ExternalLabel]; v != "" {
		return v, SourceExternalLabel, ExternalLabel
	}
	if v := annotations[annKey]; v != "" {
		return v, SourceAnnotation, annKey
	}
	if v := labels[labelKey]; v != "" {
		return v, SourceLabel, labelKey
	}
	return DefaultName, SourceDefault, ""
}
