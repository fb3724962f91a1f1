//! (being written by the mempool engineer)
