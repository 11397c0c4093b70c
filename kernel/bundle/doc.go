// Package bundle reads, writes, signs and verifies plugin bundles: the one
// file an operator installs to add a plugin to Latch.
//
// A bundle is a gzip-compressed tar archive holding regular files only:
//
//   - latch-bundle.yaml, the manifest (Manifest): the bundle's name, its
//     semantic version, the ABI version it speaks, the extensions it
//     declares (kind and entry name), the capabilities it asks for, the
//     JSON Schema of its configuration and its modules (a WebAssembly
//     module, and native binaries per os/arch, named by path);
//   - SHA256SUMS, one "<hex sha-256>  <path>" line for every other file of
//     the archive, the manifest included, sorted by path;
//   - latch-bundle.sig, optional: a detached ed25519 signature over the
//     bytes of SHA256SUMS (Signature), which therefore covers the manifest
//     and every module.
//
// Read parses an archive strictly: bounded sizes (MaxArchiveSize,
// MaxFileSize, MaxFiles), no path that is absolute, unclean, or climbs out
// with "..", no symbolic or hard links, devices or duplicates, no file that
// SHA256SUMS does not list or that does not match its digest, and a
// manifest that ParseManifest accepts. Verify then checks the signature
// against the installation's trusted keys (Trust).
//
// Pack builds an archive from a manifest and its files; Sign adds (or
// replaces) the signature.
package bundle
