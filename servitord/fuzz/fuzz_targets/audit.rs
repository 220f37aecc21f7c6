//! `audit.tsv`: who ran and who cancelled each run of a job, which runs servitord
//! started, and what made the runs servitord made itself (a schedule, a retry).
//! Properties: reading never fails (unreadable lines are skipped), and every line
//! written reads back as what was written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use servitor_shared::Peer;
use servitord::state_files::{Asked, Origin, format_audit_line, parse_audit_log};

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let audits = parse_audit_log(text);
    // What was read, written again line by line, reads back the same.
    let servitord = Peer {
        uid: 0,
        gid: 0,
        pid: Some(1),
    };
    let mut written = String::new();
    for (id, audit) in &audits {
        if audit.origin != Origin::Api {
            written.push_str(&format_audit_line(
                *id,
                Asked::Made(audit.origin),
                servitord,
            ));
        }
        if let Some(peer) = audit.triggered_by {
            written.push_str(&format_audit_line(*id, Asked::Run, peer));
        }
        if let Some(peer) = audit.cancelled_by {
            written.push_str(&format_audit_line(*id, Asked::Cancel, peer));
        }
        if audit.started {
            written.push_str(&format_audit_line(*id, Asked::Start, servitord));
        }
    }
    let read = parse_audit_log(&written);
    let recorded = |a: &servitord::state_files::Audit| {
        let made = a.origin != Origin::Api;
        a.triggered_by.is_some() || a.cancelled_by.is_some() || a.started || made
    };
    assert_eq!(
        read,
        audits.into_iter().filter(|(_, a)| recorded(a)).collect()
    );
    // A line made of the input's first bytes as numbers reads back whole.
    if bytes.len() >= 9 {
        let peer = Peer {
            uid: u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            gid: u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            pid: (bytes[8] % 2 == 0).then_some(i32::from(bytes[8])),
        };
        let line = format_audit_line(u64::from(bytes[0]), Asked::Cancel, peer);
        assert_eq!(
            parse_audit_log(&line)[&u64::from(bytes[0])].cancelled_by,
            Some(peer)
        );
    }
});
