package main

import (
	"github.com/vpc-cni/vpc-cni/pkg/cniplugin/confscan"
)

// stringFields are netConf's string members, by their JSON names.
func (nc *netConf) stringFields() map[string]*string {
	return map[string]*string{
		"cniVersion": &nc.CNIVersion, "name": &nc.Name, "vethPrefix": &nc.VethPrefix, "mtu": &nc.MTU,
		"podSGEnforcingMode": &nc.PodSGEnforcingMode, "pluginLogFile": &nc.PluginLogFile,
		"pluginLogLevel": &nc.PluginLogLevel, "ipamdSocket": &nc.IpamdSocket, "npaSocket": &nc.NPASocket,
	}
}

const (
	prevResultKey    = "prevResult"
	runtimeConfigKey = "runtimeConfig"
)

// scanNetConf reads the netconf without encoding/json's reflection
// (pkg/cniplugin/confscan), or reports false when encoding/json must
// decode it: then its values and errors are the ones the plugin gives.
func scanNetConf(stdin []byte) (netConf, bool) {
	var nc netConf
	fields := nc.stringFields()
	known := make([]string, 0, len(fields)+2)
	for k := range fields {
		known = append(known, k)
	}
	known = append(known, prevResultKey, runtimeConfigKey)
	o, ok := confscan.Scan(stdin, known...)
	if !ok {
		return netConf{}, false
	}
	for k, p := range fields {
		if *p, ok = o.String(k); !ok {
			return netConf{}, false
		}
	}
	if v, present := o[prevResultKey]; present {
		// An object is kept raw, as json.RawMessage keeps it; null and
		// other values are left to encoding/json.
		if v[0] != '{' {
			return netConf{}, false
		}
		nc.RawPrevResult = append([]byte(nil), v...)
	}
	if _, present := o[runtimeConfigKey]; present {
		rc, ok := o.Object(runtimeConfigKey, podAnnotationsCap)
		if !ok {
			return netConf{}, false
		}
		if _, present := rc[podAnnotationsCap]; present {
			ann, ok := rc.Object(podAnnotationsCap)
			if !ok {
				return netConf{}, false
			}
			// Every annotation must be a string, or encoding/json fails;
			// only the multi-NIC one is read.
			nc.RuntimeConfig.PodAnnotations = make(map[string]string, 1)
			for k := range ann {
				if !ann.IsString(k) {
					return netConf{}, false
				}
			}
			if _, present := ann[nicConfigKey]; present {
				v, ok := ann.String(nicConfigKey)
				if !ok {
					return netConf{}, false
				}
				nc.RuntimeConfig.PodAnnotations[nicConfigKey] = v
			}
		}
	}
	return nc, true
}
