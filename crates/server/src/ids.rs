//! Ids and secrets: unguessable random ids with a readable prefix, random tokens, and the one-way hash under
//! which tokens are stored, so a database leak does not leak sessions or pump tokens.

/// A random, unguessable id with a readable prefix (`pat_…`, `usr_…`).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_hex(12))
}

/// `bytes` random bytes from the OS, hex encoded.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The OS random source failing is not a condition we can serve through; it is a broken host.
    getrandom::fill(&mut buf).expect("the operating system's random number source failed");
    hex::encode(buf)
}

/// SHA-256 of a secret token, hex; tokens are stored only as hashes so a database leak does not leak sessions.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}
