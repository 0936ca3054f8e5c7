// vcsim for the vcd-backup tests: VMware's own vSphere simulator (govmomi 0.24, from Debian's
// golang-github-vmware-govmomi-dev) plus the two things version 0.24 lacks and the backup path needs:
//
//  1. Snapshot disks carry a `backing.changeId` when the VM has changeTrackingEnabled. vcsim copies the VM's
//     config into the snapshot and never sets one. Here every CreateSnapshot_Task of a CBT-enabled VM gives each
//     disk a fresh changeId ("52 <disk uuid>/<n>") in the snapshot's own (deep-copied) device list and on the
//     VM's live disk, and keeps a copy of the disk's flat file as it was at that moment, keyed by the changeId.
//  2. QueryChangedDiskAreas. The answer is computed, not scripted: the snapshot's copy is compared with the
//     copy kept for the asked changeId in 64 KiB chunks; differing chunks are the changed areas. changeId "*"
//     answers the allocated (non-zero) chunks. An unknown changeId, or a VM without CBT, is a FileFault, as a
//     CBT reset is on a real host. Each answer covers at most 2 MiB, so clients must loop from
//     startOffset+length, as they must against vCenter.
//
// It also makes VM disks real: each is resized to -disk-mib, its .vmdk becomes a monolithicFlat descriptor
// and its -flat.vmdk a file of that size, so the https transport reads them exactly as on a file datastore.
//
// Output: one JSON line on stdout describing the server. It stops on SIGTERM, SIGINT or when stdin closes.
package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

const (
	chunk     = 64 * 1024       // CBT granularity of the simulated changed areas
	maxAnswer = 2 * 1024 * 1024 // bytes of disk covered by one QueryChangedDiskAreas answer
)

type cbtState struct {
	mu       sync.Mutex
	dir      string            // where copies of flat files live
	copies   map[string]string // changeId -> copy of the flat file taken when that changeId was issued
	sequence int
}

var state cbtState

type datastoreInfo struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

type vmInfo struct {
	Moref string `json:"moref"`
	Name  string `json:"name"`
}

func main() {
	useTLS := flag.Bool("tls", false, "serve https with a self-signed certificate")
	user := flag.String("user", "backup@vsphere.local", "the only user name accepted by Login")
	pass := flag.String("password", "", "the only password accepted by Login (required)")
	diskMiB := flag.Int("disk-mib", 8, "capacity of every VM disk in MiB")
	flag.Parse()
	if *pass == "" {
		log.Fatal("-password is required")
	}

	model := simulator.VPX()
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	model.Service.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword(*user, *pass)}
	if *useTLS {
		model.Service.TLS = new(tls.Config)
	}
	dir, err := ioutil.TempDir("", "vcsim-cbt-")
	if err != nil {
		log.Fatal(err)
	}
	state = cbtState{dir: dir, copies: map[string]string{}}

	stores := datastores()
	vms := prepareDisks(int64(*diskMiB)*1024*1024, stores)

	server := model.Service.NewServer()
	sdk := server.Config.Handler
	// The server is started but nobody knows its address yet, so swapping the handler cannot race a request.
	server.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sdk" && r.Method == http.MethodPost {
			serveSDK(sdk, w, r)
			return
		}
		sdk.ServeHTTP(w, r)
	})

	out := map[string]interface{}{
		"url":        fmt.Sprintf("%s://%s/sdk", server.URL.Scheme, server.URL.Host),
		"datacenter": "DC0",
		"datastores": stores,
		"vms":        vms,
	}
	if *useTLS {
		sum := sha256.Sum256(server.Certificate().Raw)
		out["thumbprint"] = hex.EncodeToString(sum[:])
	}
	line, _ := json.Marshal(out)
	fmt.Println(string(line))

	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(ioutil.Discard, os.Stdin)
		done <- struct{}{}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		done <- struct{}{}
	}()
	<-done
	server.Close()
	model.Remove()
	_ = os.RemoveAll(dir)
}

func datastores() []datastoreInfo {
	var out []datastoreInfo
	for _, e := range simulator.Map.All("Datastore") {
		ds := e.(*simulator.Datastore)
		out = append(out, datastoreInfo{Name: ds.Name, Path: ds.Info.GetDatastoreInfo().Url})
	}
	return out
}

// flatFile maps "[ds] dir/disk.vmdk" to the local path of its flat extent.
func flatFile(fileName string, stores []datastoreInfo) (string, bool) {
	m := regexp.MustCompile(`^\[([^\]]+)\] (.+)$`).FindStringSubmatch(fileName)
	if m == nil {
		return "", false
	}
	for _, ds := range stores {
		if ds.Name == m[1] {
			return filepath.Join(ds.Path, strings.Replace(m[2], ".vmdk", "-flat.vmdk", 1)), true
		}
	}
	return "", false
}

func prepareDisks(capacity int64, stores []datastoreInfo) []vmInfo {
	var vms []vmInfo
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		vms = append(vms, vmInfo{Moref: vm.Self.Value, Name: vm.Name})
		for _, d := range vm.Config.Hardware.Device {
			disk, ok := d.(*types.VirtualDisk)
			if !ok {
				continue
			}
			backing, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			if !ok {
				continue
			}
			disk.CapacityInKB = capacity / 1024
			disk.CapacityInBytes = capacity
			flat, ok := flatFile(backing.FileName, stores)
			if !ok {
				log.Fatalf("cannot resolve %s", backing.FileName)
			}
			if err := os.Truncate(flat, capacity); err != nil {
				log.Fatal(err)
			}
			descriptor := fmt.Sprintf("# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n# Extent description\nRW %d FLAT \"%s\" 0\n\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\nddb.virtualHWVersion = \"13\"\n",
				capacity/512, path.Base(flat))
			if err := ioutil.WriteFile(strings.Replace(flat, "-flat.vmdk", ".vmdk", 1), []byte(descriptor), 0o644); err != nil {
				log.Fatal(err)
			}
		}
	}
	return vms
}

// serveSDK passes the request to vcsim, buffering its answer so snapshot changeIds are in place before the
// client sees the task, and answers QueryChangedDiskAreas itself when vcsim says the method does not exist
// (vcsim has already checked the session and the VM's moref by then).
func serveSDK(sdk http.Handler, w http.ResponseWriter, r *http.Request) {
	body, err := ioutil.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.Body = ioutil.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	sdk.ServeHTTP(rec, r)
	answer := rec.Body.Bytes()
	status := rec.Code

	switch {
	case bytes.Contains(body, []byte("CreateSnapshot_Task")) && status == http.StatusOK:
		var req struct {
			This string `xml:"Body>CreateSnapshot_Task>_this"`
		}
		if xml.Unmarshal(body, &req) == nil {
			issueChangeIds(req.This)
		}
	case bytes.Contains(body, []byte("QueryChangedDiskAreas")) && bytes.Contains(answer, []byte("MethodNotFound")):
		status, answer = queryChangedDiskAreas(body)
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	_, _ = w.Write(answer)
}

func lookupVM(moref string) *simulator.VirtualMachine {
	obj := simulator.Map.Get(types.ManagedObjectReference{Type: "VirtualMachine", Value: moref})
	vm, _ := obj.(*simulator.VirtualMachine)
	return vm
}

func issueChangeIds(moref string) {
	vm := lookupVM(moref)
	if vm == nil || vm.Snapshot == nil || vm.Snapshot.CurrentSnapshot == nil {
		return
	}
	snap, ok := simulator.Map.Get(*vm.Snapshot.CurrentSnapshot).(*simulator.VirtualMachineSnapshot)
	if !ok {
		return
	}
	stores := datastores()
	simulator.Map.WithLock(vm, func() {
		if vm.Config.ChangeTrackingEnabled == nil || !*vm.Config.ChangeTrackingEnabled {
			return
		}
		// vcsim shares the device list between the VM and its snapshots; copy it so the snapshot's
		// changeIds stay what they were when it was taken.
		devices := make([]types.BaseVirtualDevice, 0, len(snap.Config.Hardware.Device))
		for _, d := range snap.Config.Hardware.Device {
			disk, ok := d.(*types.VirtualDisk)
			if !ok {
				devices = append(devices, d)
				continue
			}
			backing, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			if !ok {
				devices = append(devices, d)
				continue
			}
			changeID := newChangeID(backing.Uuid, backing.FileName, stores)
			diskCopy := *disk
			backingCopy := *backing
			backingCopy.ChangeId = changeID
			diskCopy.Backing = &backingCopy
			devices = append(devices, &diskCopy)
			backing.ChangeId = changeID // the live disk's newest changeId, as vSphere reports it
		}
		snap.Config.Hardware.Device = devices
	})
}

func newChangeID(uuid, fileName string, stores []datastoreInfo) string {
	state.mu.Lock()
	defer state.mu.Unlock()
	state.sequence++
	if uuid == "" {
		uuid = fmt.Sprintf("%x", sha256.Sum256([]byte(fileName)))[:32]
	}
	id := fmt.Sprintf("52 %s/%d", uuid, state.sequence)
	flat, ok := flatFile(fileName, stores)
	if !ok {
		return id
	}
	data, err := ioutil.ReadFile(flat)
	if err != nil {
		log.Printf("cannot copy %s for changeId %s: %v", flat, id, err)
		return id
	}
	name := filepath.Join(state.dir, fmt.Sprintf("%x", sha256.Sum256([]byte(id))))
	if err := ioutil.WriteFile(name, data, 0o600); err != nil {
		log.Printf("cannot keep copy for changeId %s: %v", id, err)
		return id
	}
	state.copies[id] = name
	return id
}

type queryRequest struct {
	This        string `xml:"Body>QueryChangedDiskAreas>_this"`
	Snapshot    string `xml:"Body>QueryChangedDiskAreas>snapshot"`
	DeviceKey   int32  `xml:"Body>QueryChangedDiskAreas>deviceKey"`
	StartOffset int64  `xml:"Body>QueryChangedDiskAreas>startOffset"`
	ChangeID    string `xml:"Body>QueryChangedDiskAreas>changeId"`
}

func queryChangedDiskAreas(body []byte) (int, []byte) {
	var req queryRequest
	if err := xml.Unmarshal(body, &req); err != nil {
		return fault("InvalidRequest", "", "cannot parse QueryChangedDiskAreas: "+err.Error())
	}
	vm := lookupVM(req.This)
	if vm == nil {
		return fault("ManagedObjectNotFound", fmt.Sprintf(`<obj type="VirtualMachine">%s</obj>`, esc(req.This)), "managed object not found: "+req.This)
	}
	if vm.Config.ChangeTrackingEnabled == nil || !*vm.Config.ChangeTrackingEnabled {
		return fault("FileFault", "<file></file>", "change tracking is not enabled on "+req.This)
	}
	snap, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: req.Snapshot}).(*simulator.VirtualMachineSnapshot)
	if !ok || snap.Vm.Value != req.This {
		return fault("InvalidArgument", "<invalidProperty>snapshot</invalidProperty>", "snapshot "+req.Snapshot+" is not a snapshot of "+req.This)
	}
	var disk *types.VirtualDisk
	for _, d := range snap.Config.Hardware.Device {
		if x, ok := d.(*types.VirtualDisk); ok && x.Key == req.DeviceKey {
			disk = x
		}
	}
	if disk == nil {
		return fault("InvalidArgument", "<invalidProperty>deviceKey</invalidProperty>", fmt.Sprintf("no disk with key %d in snapshot %s", req.DeviceKey, req.Snapshot))
	}
	backing := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
	capacity := disk.CapacityInBytes
	if req.StartOffset < 0 || req.StartOffset >= capacity || req.StartOffset%chunk != 0 {
		return fault("InvalidArgument", "<invalidProperty>startOffset</invalidProperty>", fmt.Sprintf("startOffset %d is outside the disk or not 64 KiB aligned", req.StartOffset))
	}
	state.mu.Lock()
	current, haveCurrent := state.copies[backing.ChangeId]
	base, haveBase := state.copies[req.ChangeID]
	state.mu.Unlock()
	if !haveCurrent {
		return fault("FileFault", "<file>"+esc(backing.FileName)+"</file>", "the snapshot has no change tracking data (changeId empty or unknown)")
	}
	if req.ChangeID != "*" && !haveBase {
		return fault("FileFault", "<file>"+esc(backing.FileName)+"</file>", "changeId "+req.ChangeID+" is unknown for this disk: change tracking was reset; read the whole disk")
	}
	cur, _ := ioutil.ReadFile(current)
	var old []byte
	if req.ChangeID != "*" {
		old, _ = ioutil.ReadFile(base)
	}
	length := capacity - req.StartOffset
	if length > maxAnswer {
		length = maxAnswer
	}
	var areas strings.Builder
	var runStart, runLen int64 = -1, 0
	flush := func() {
		if runStart >= 0 {
			fmt.Fprintf(&areas, "<changedArea><start>%d</start><length>%d</length></changedArea>", runStart, runLen)
		}
		runStart, runLen = -1, 0
	}
	for off := req.StartOffset; off < req.StartOffset+length; off += chunk {
		end := off + chunk
		if end > req.StartOffset+length {
			end = req.StartOffset + length
		}
		a := slice(cur, off, end)
		var changed bool
		if req.ChangeID == "*" {
			changed = !bytes.Equal(a, make([]byte, len(a)))
		} else {
			changed = !bytes.Equal(a, slice(old, off, end))
		}
		if changed {
			if runStart < 0 {
				runStart = off
			}
			runLen += end - off
		} else {
			flush()
		}
	}
	flush()
	return http.StatusOK, envelope(fmt.Sprintf(`<QueryChangedDiskAreasResponse xmlns="urn:vim25"><returnval><startOffset>%d</startOffset><length>%d</length>%s</returnval></QueryChangedDiskAreasResponse>`,
		req.StartOffset, length, areas.String()))
}

// slice returns data[from:to], zero-filled past the end of the file (flat files may be shorter than the disk).
func slice(data []byte, from, to int64) []byte {
	out := make([]byte, to-from)
	if from < int64(len(data)) {
		copy(out, data[from:])
	}
	return out
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func envelope(body string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>` +
		body + `</soapenv:Body></soapenv:Envelope>`)
}

func fault(kind, detail, message string) (int, []byte) {
	return http.StatusInternalServerError, envelope(fmt.Sprintf(`<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>%s</faultstring><detail><%sFault xmlns="urn:vim25" xsi:type="%s">%s</%sFault></detail></soapenv:Fault>`,
		esc(message), kind, kind, detail, kind))
}
