//! The FastCGI 1.0 protocol: records, name-value pairs, the record codec and
//! the per-connection state machine. Pure protocol: no sockets, no PHP.
