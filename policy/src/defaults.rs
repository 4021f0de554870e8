//! The default policies, embedded in the binary as ACS-format JSON files.
