//! `probabilistic` picks exactly the trace ids the Collector picks.
//!
//! The expected values were produced by running the Collector's algorithm (Go's `hash/fnv`
//! FNV-1a 64 over salt and trace id, the threshold computed with `math/big` as in
//! `internal/sampling/probabilistic.go`) with Go 1.26 on the same corpus: 200 trace ids from a
//! splitmix64 sequence seeded with 0x5eed, each id two big-endian outputs.

mod common;

use wbpf_sampler::policy::{hash_trace_id, threshold_for_percentage};
use wbpf_sampler::{Decision, TraceData};

fn corpus() -> Vec<[u8; 16]> {
    let mut state: u64 = 0x5eed;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..200)
        .map(|_| {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&next().to_be_bytes());
            id[8..].copy_from_slice(&next().to_be_bytes());
            id
        })
        .collect()
}

#[test]
fn thresholds_match_go_big_float() {
    let expected: &[(f64, u64)] = &[
        (-5.0, 0),
        (0.0, 0),
        (0.1, 18_446_744_073_709_551),
        (1.0, 184_467_440_737_095_519),
        (10.0, 1_844_674_407_370_955_263),
        (12.5, 2_305_843_009_213_693_951),
        (25.0, 4_611_686_018_427_387_903),
        (33.0, 6_087_425_544_324_152_319),
        (33.333, 6_148_853_202_089_604_095),
        (50.0, 9_223_372_036_854_775_807),
        (66.6, 12_285_531_553_090_559_999),
        (99.9, 18_428_297_329_635_844_095),
        (100.0, 18_446_744_073_709_551_615),
        (150.0, 18_446_744_073_709_551_615),
    ];
    for (percentage, threshold) in expected {
        assert_eq!(
            threshold_for_percentage(*percentage),
            *threshold,
            "{percentage}%"
        );
    }
}

#[test]
fn hash_matches_go_fnv() {
    let ids = corpus();
    assert_eq!(hex(&ids[0]), "09f1fd9d03f0a9b4553274161bbf8475");
    assert_eq!(
        hash_trace_id("default-hash-seed", &ids[0]),
        11_509_700_376_150_929_039
    );
}

#[test]
fn picks_the_same_trace_ids_as_the_collector() {
    let cases: &[(&str, f64, &[usize])] = &[
        (
            "",
            10.0,
            &[
                4, 8, 35, 41, 49, 67, 68, 87, 89, 109, 120, 132, 134, 135, 140, 157, 159, 167, 173,
                183, 195,
            ],
        ),
        (
            "",
            33.0,
            &[
                2, 3, 4, 5, 8, 9, 14, 15, 16, 17, 18, 22, 24, 25, 26, 28, 32, 35, 38, 39, 41, 49,
                53, 54, 55, 56, 57, 62, 63, 66, 67, 68, 75, 84, 85, 87, 89, 90, 92, 94, 97, 99,
                100, 104, 109, 115, 116, 117, 120, 122, 123, 130, 132, 134, 135, 136, 139, 140,
                145, 152, 157, 159, 161, 162, 163, 167, 170, 173, 176, 177, 183, 185, 189, 192,
                193, 195, 198, 199,
            ],
        ),
        (
            "test-salt",
            25.0,
            &[
                3, 6, 9, 10, 16, 18, 20, 24, 32, 36, 39, 40, 49, 55, 57, 59, 65, 68, 69, 72, 73,
                74, 79, 80, 84, 89, 92, 93, 101, 113, 115, 128, 129, 131, 134, 140, 145, 146, 147,
                149, 151, 157, 161, 173, 176, 183, 197,
            ],
        ),
        (
            "x",
            50.0,
            &[
                0, 2, 3, 8, 11, 13, 14, 20, 22, 24, 25, 31, 32, 35, 36, 39, 40, 41, 44, 45, 47, 50,
                51, 52, 56, 57, 58, 61, 62, 63, 64, 65, 68, 69, 72, 73, 75, 81, 85, 87, 89, 90, 91,
                93, 94, 95, 96, 101, 104, 110, 113, 116, 117, 121, 122, 123, 124, 130, 132, 133,
                135, 136, 137, 140, 141, 142, 144, 145, 146, 151, 153, 155, 156, 159, 160, 161,
                166, 167, 173, 175, 176, 179, 181, 182, 184, 185, 186, 187, 190, 191, 192, 193,
                198,
            ],
        ),
    ];
    let ids = corpus();
    for (salt, percentage, expected) in cases {
        let policy = common::policy(&format!(
            "{{name: p, type: probabilistic, probabilistic: {{hash_salt: '{salt}', \
             sampling_percentage: {percentage}}}}}"
        ));
        let picked: Vec<usize> = ids
            .iter()
            .enumerate()
            .filter(|(_, id)| policy.evaluate(&TraceData::new(**id, 0), 0) == Decision::Sampled)
            .map(|(index, _)| index)
            .collect();
        assert_eq!(&picked, expected, "salt {salt:?}, {percentage}%");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
