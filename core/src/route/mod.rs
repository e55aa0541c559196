//! Routing rules (hot-reloaded): which destinations each record goes to.
//!
//! # The routes file (`config/routes.toml`)
//!
//! ```toml
//! mode = "fan-out"        # or "first-match"; optional, default "fan-out"
//! unmatched = "hold"      # or a destination name; optional, default "hold"
//!
//! [[route]]
//! name = "lab-results-to-dmp"          # required, unique
//! destinations = ["dmp", "ehr"]         # required: one or more configured destinations
//! enabled = true                        # optional, default true
//! [route.match]                         # optional: missing or empty = every record
//! source = "lab-mllp"
//! kind = ["lab-result", "imaging-report"]
//! has_ins = true
//! not = { flag = "MASQUE_PS" }
//!
//! [[route]]
//! name = "glucose-to-registry"
//! destinations = ["diabetes-registry"]
//! match = { code = "http://loinc.org|2345-7", any = [{ status = "final" }, { status = "corrected" }] }
//! ```
//!
//! ## Top-level settings
//!
//! - `mode`: `"fan-out"` (default): a record goes to the destinations of *every* matching
//!   route, deduplicated, in file order. `"first-match"`: only the first matching route in file
//!   order.
//! - `unmatched`: what happens to a record no route matches. `"hold"` (default): the record is
//!   kept in the journal and held; it is never dropped silently. A destination name: the record
//!   goes there (`hold` is therefore reserved).
//!
//! ## Routes: `[[route]]`
//!
//! | key            | required | meaning                                                        |
//! |----------------|----------|----------------------------------------------------------------|
//! | `name`         | yes      | unique name, recorded in the journal with each routed record   |
//! | `destinations` | yes      | non-empty list of destination names configured in `passerelle.toml` |
//! | `enabled`      | no       | `false` keeps the route in the file (still checked) but unused |
//! | `match`        | no       | a match table; missing or empty matches every record           |
//!
//! ## Match tables
//!
//! A match table holds conditions on the record's envelope. All the conditions of one table
//! must hold. A value is a string or a list of strings, meaning "any of" (`kind = ["a", "b"]`).
//!
//! | key               | matches when                                                        |
//! |-------------------|---------------------------------------------------------------------|
//! | `source`          | the configured source that received the message is one of these     |
//! | `kind`            | the record kind (`lab-result`, `prescription`, `oncology-meeting`, `clinical-document`, `imaging-report`, `allergy`, `patient-identity`, or a plugin-defined kind) |
//! | `status`          | `preliminary`, `final`, `corrected`, `cancelled`, `entered-in-error`, `unknown` |
//! | `message_type`    | the message type, e.g. `ORU^R01` (a record without one never matches) |
//! | `plugin`          | the name of the plugin that produced the record                     |
//! | `confidentiality` | the confidentiality level: `N`, `R` or `V`                          |
//! | `flag`            | one of these DMP visibility flags is set: `MASQUE_PS`, `INVISIBLE_PATIENT`, `INVISIBLE_REPRESENTANTS_LEGAUX` |
//! | `code`            | one of the record's routing codes is one of these: `"system\|code"` (e.g. `"http://loinc.org\|2345-7"`), or `"code"` / `"\|code"` for that code in any system |
//! | `has_ins`         | `true`: the patient has an INS; `false`: no INS                    |
//! | `ins_system`      | the patient has an INS in one of these namespaces: `nir`, `nia`, `nir-test`, `nir-demo`, or the OIDs (`urn:oid:1.2.250.1.213.1.4.8`...) |
//! | `all`             | a list of match tables that must all match                          |
//! | `any`             | a list of match tables of which at least one must match             |
//! | `not`             | a match table that must not match                                   |
//!
//! `all`, `any` and `not` nest freely (up to 32 levels), as inline tables
//! (`any = [{ source = "a" }, { kind = "b" }]`) or as `[[route.match.any]]` tables.
//!
//! ## Errors
//!
//! The file is checked as a whole; the first error is reported as `file:line:column: reason`
//! (unknown key, wrong type, unknown `mode`, missing `name` or `destinations`, duplicate route
//! name, empty `destinations`, unknown destination, empty value list, unknown status, level,
//! flag or INS namespace, malformed code). At startup an error stops the daemon; on reload the
//! file is rejected and the running rules stay in force.
//!
//! # Versions and hot reload
//!
//! A [`RuleSet`]'s [`version`](RuleSet::version) is the first 12 hex digits of the SHA-256 of
//! the file content: stable across restarts, recorded in the journal with each routed record.
//! [`RoutesHandle`] holds the current rule set; [`watch`] reloads it when the file changes
//! (debounced, within 1 s); [`RoutesHandle::reload_now`] reloads on demand (SIGHUP). Saving
//! the same content again is not a reload. Callers take one snapshot per record
//! ([`RoutesHandle::current`]), so each record is routed under exactly one version.
//!
//! # Index and cost
//!
//! At load, each enabled route is keyed on the mandatory equality constraints of its
//! top-level conjunction (the match table's own fields and nested `all`, never under `any` or
//! `not`): its `source`, `kind` and `code` sets, whichever are present (the smallest set when a
//! field appears twice). The route is stored under one 64-bit hash key per combination of
//! accepted values (`source × kind × code`, codes without their system; at most 4,096 keys per
//! route, dropping the largest dimension beyond). Routes with none of them are *wildcards*.
//!
//! Routing one record hashes its source, kind and codes, looks up one key per key *pattern*
//! used by the rule set (7 patterns at most; those keyed on a code once per record code),
//! merges the resulting sorted candidate lists with the wildcard list in file order, and
//! evaluates only those candidates (first-match stops at the first hit). A hash collision can
//! only add a candidate, never lose one, since every candidate is fully evaluated.
//!
//! Cost per record: `O(P + P_code·c + (k + w)·e)` for `P` patterns in use, `c` record codes,
//! `k` candidate routes keyed on the record's values, `w` wildcard routes and `e` the cost of
//! one condition. It does not depend on the number of routes keyed on *other* values: keep
//! wildcard routes few and put `source`, `kind` or `code` at the top of the match of large
//! rule sets. The only allocations are the returned [`RouteDecision`]'s strings.

mod cond;
mod reload;
mod rules;
mod schema;

pub use reload::{DEBOUNCE, MAX_DEBOUNCE, ReloadOutcome, RoutesHandle, RoutesWatcher, watch};
pub use rules::{RouteDecision, RuleSet, Unmatched};
pub use schema::Mode;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
