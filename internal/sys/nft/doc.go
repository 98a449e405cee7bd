// Package nft holds small helpers over github.com/google/nftables for
// skiff's rule sets: builders for the expression sequences a rule matches
// with (an IPv4 prefix of the source or destination address, the layer 3
// protocol of an inet table, the transport protocol and destination port,
// a local destination address, an input or output interface name, a
// destination-NATed connection) and for a DNAT to an address and port, a
// comment for a rule, and a text dump of a table read back from the
// kernel, which is what logs and golden tests show.
//
// The dump is one line per chain and one line per expression, in the
// spirit of `nft --debug=netlink`: every expression the kernel holds,
// with register numbers and data as hex bytes in network order (so
// 10.42.0.0 reads 0x0a2a0000). Counters are shown without their values,
// so that a dump is the same whatever traffic went through. The dump of
// a rule the helpers do not know shows its Go type.
//
// The package is Linux-only, like nftables.
package nft
