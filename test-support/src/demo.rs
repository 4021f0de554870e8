//! A small realistic cluster for `rampart up --demo`.
