//! Bulk inserts for `careline seed`: realistic data sets for the page benchmarks.
