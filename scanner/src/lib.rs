//! Rampart's image scanner. Its first parts are pure: how each package ecosystem orders its
//! versions, which decides whether an installed package is before a vulnerability's fix, which
//! advisories apply, and what an image's package databases hold.
//!
//! ```text
//!  installed "1:2.36-9+deb12u4" ┐                       ┌ Less / Equal / Greater
//!  fixed     "1:2.36-9+deb12u7" ┴ version::compare(Debian) ┘ (or why a version is invalid)
//! ```
//!
//! Each ecosystem has its own rules and Rampart follows the package manager's own, not a
//! generic "numbers and dots" comparison: dpkg (epochs, `~` before anything), rpm (`~` and `^`),
//! apk (letters, `_rc`/`_p` suffixes, `-rN`), PEP 440 (pre, post, dev and local releases) and
//! SemVer (npm, crates.io, Go modules).
//!
//! Advisories ([`osv`] records, Alpine's [`secdb`], the [`debian`] tracker) say which versions are
//! affected, [`os_release`] which distribution release an image is, and the installed-package
//! databases ([`packages`]) what it holds.

pub mod analyze;
pub mod debian;
pub mod gobinary;
pub mod image;
pub mod image_config;
pub mod java;
pub mod layers;
pub mod os_release;
pub mod osv;
pub mod packages;
pub mod registry;
pub mod report;
pub mod rpm;
pub mod rustbinary;
pub mod secdb;
pub mod store;
pub mod version;
pub mod vulndb;

pub use version::{Ecosystem, VersionError, compare};
