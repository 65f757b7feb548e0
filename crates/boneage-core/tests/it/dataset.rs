//! Labels in every RSNA spelling, splits, and development stages.

use boneage_core::Sex;
use boneage_core::dataset::{Sample, assign_folds, read_labels, split_stratified, write_labels};
use boneage_core::stages::Stage;

fn labels(text: &str) -> Result<Vec<Sample>, boneage_core::Error> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("labels.csv");
    std::fs::write(&p, text).unwrap();
    read_labels(&p)
}

#[test]
fn all_rsna_spellings() {
    let expected = vec![
        Sample {
            id: "1377".into(),
            boneage_months: 180.0,
            sex: Sex::Female,
        },
        Sample {
            id: "1394".into(),
            boneage_months: 57.0,
            sex: Sex::Male,
        },
    ];
    for text in [
        "id,boneage,male\n1377,180,False\n1394,57,True\n",
        "id,boneage,male\n1377,180,false\n1394,57,true\n",
        "Case ID,Sex,Ground truth bone age (months)\n1377,F,180\n1394,M,57\n",
        "Image ID,male,Bone Age (months)\n1377,FALSE,180\n1394,TRUE,57.0\n",
        "Image ID , male , Bone Age (months)\r\n1377 , false , 180\r\n1394 , true , 57\r\n",
    ] {
        assert_eq!(labels(text).unwrap(), expected, "{text:?}");
    }
}

#[test]
fn unknown_columns_are_named() {
    let err = labels("patient,age_in_months,male\n1,2,true\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing an id column"), "{err}");
    assert!(err.contains("bone age column"), "{err}");
    assert!(
        err.contains("\"patient\"") && err.contains("\"age_in_months\""),
        "{err}"
    );
}

#[test]
fn bad_values_name_line_and_column() {
    let err = labels("id,boneage,male\n1,12,true\n2,twelve,true\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 3") && err.contains("\"twelve\"") && err.contains("boneage"),
        "{err}"
    );
    let err = labels("Case ID,Sex,Ground truth bone age (months)\n7,X,12\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 2") && err.contains("not M or F"),
        "{err}"
    );
}

#[test]
fn write_then_read_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("l.csv");
    let s = vec![Sample {
        id: "ph00001".into(),
        boneage_months: 37.5,
        sex: Sex::Male,
    }];
    write_labels(&p, &s).unwrap();
    assert_eq!(read_labels(&p).unwrap(), s);
}

fn population(n_male: usize, n_female: usize) -> Vec<Sample> {
    (0..n_male + n_female)
        .map(|i| Sample {
            id: i.to_string(),
            boneage_months: (i * 7 % 228) as f64,
            sex: if i < n_male { Sex::Male } else { Sex::Female },
        })
        .collect()
}

/// Folds for cross-validation: every sample in exactly one, each fold with its share
/// of each sex (within one) and of the age range (fold mean ages within a few months
/// of each other), the same for the same seed.
#[test]
fn folds_are_stratified_by_sex_and_age_and_seeded() {
    let s = population(533, 467);
    let f = assign_folds(&s, 5, 7).unwrap();
    assert_eq!(f, assign_folds(&s, 5, 7).unwrap(), "same seed, same folds");
    assert_ne!(f, assign_folds(&s, 5, 8).unwrap());
    assert!(f.iter().all(|&k| k < 5));
    for sex in [Sex::Male, Sex::Female] {
        let sizes: Vec<usize> = (0..5)
            .map(|k| {
                (0..s.len())
                    .filter(|&i| f[i] == k && s[i].sex == sex)
                    .count()
            })
            .collect();
        let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(hi - lo <= 1, "{sex:?} per fold: {sizes:?}");
    }
    let totals: Vec<usize> = (0..5)
        .map(|k| f.iter().filter(|&&x| x == k).count())
        .collect();
    assert_eq!(totals.iter().sum::<usize>(), 1000);
    assert!(
        totals.iter().max().unwrap() - totals.iter().min().unwrap() <= 1,
        "{totals:?}"
    );
    let means: Vec<f64> = (0..5)
        .map(|k| {
            let ages: Vec<f64> = (0..s.len())
                .filter(|&i| f[i] == k)
                .map(|i| s[i].boneage_months)
                .collect();
            ages.iter().sum::<f64>() / ages.len() as f64
        })
        .collect();
    let spread = means.iter().cloned().fold(f64::MIN, f64::max)
        - means.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread < 3.0, "fold mean ages {means:?}");
    assert!(assign_folds(&s, 1, 0).is_err());
    assert!(assign_folds(&s[..3], 5, 0).is_err());
}

#[test]
fn split_is_stratified_seeded_and_disjoint() {
    let s = population(533, 467);
    let a = split_stratified(&s, 100, 42).unwrap();
    assert_eq!(
        a,
        split_stratified(&s, 100, 42).unwrap(),
        "same seed, same split"
    );
    assert_ne!(
        a.validation,
        split_stratified(&s, 100, 43).unwrap().validation
    );
    assert_eq!(a.validation.len(), 100);
    assert_eq!(a.train.len(), 900);
    let males = a
        .validation
        .iter()
        .filter(|&&i| s[i].sex == Sex::Male)
        .count();
    assert_eq!(males, 53, "53.3 % male in, 53 of 100 male out");
    let mut all: Vec<usize> = a.train.iter().chain(&a.validation).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..1000).collect::<Vec<_>>());
    assert!(split_stratified(&s, 1001, 0).is_err());
}

#[test]
fn stages_follow_gilsanz_and_ratib() {
    use Stage::*;
    let cases = [
        (Sex::Female, 9.9, Infancy),
        (Sex::Female, 10.0, Toddler),
        (Sex::Male, 13.0, Infancy),
        (Sex::Male, 14.0, Toddler),
        (Sex::Female, 24.0, PrePuberty),
        (Sex::Male, 35.9, Toddler),
        (Sex::Female, 84.0, EarlyMidPuberty),
        (Sex::Male, 107.0, PrePuberty),
        (Sex::Female, 160.0, LatePuberty),
        (Sex::Male, 170.0, LatePuberty),
        (Sex::Female, 190.0, PostPuberty),
        (Sex::Male, 228.0, PostPuberty),
    ];
    for (sex, age, stage) in cases {
        assert_eq!(Stage::of(age, sex), stage, "{sex:?} {age}");
    }
}

/// Pooled folders: one dataset in folder order, each image found in its own folder,
/// and an id in two folders refused with both named.
#[test]
fn pooled_folders_keep_each_image_in_its_folder() {
    use boneage_core::dataset::Dataset;
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    for d in [&a, &b, &c] {
        std::fs::create_dir(d).unwrap();
    }
    let s = population(2, 2);
    write_labels(&a.join("labels.csv"), &s[..3]).unwrap();
    write_labels(&b.join("labels.csv"), &s[3..]).unwrap();
    write_labels(&c.join("labels.csv"), &s[2..3]).unwrap();
    let ds = Dataset::open_dirs(&[a.clone(), b.clone()]).unwrap();
    assert_eq!(ds.samples, s);
    assert_eq!(ds.image_path(&s[0]), a.join("0.png"));
    assert_eq!(ds.image_path(&s[3]), b.join("3.png"));
    let err = Dataset::open_dirs(&[a.clone(), c.clone()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("id 2")
            && err.contains(&*a.display().to_string())
            && err.contains(&*c.display().to_string()),
        "{err}"
    );
    assert!(Dataset::open_dirs(&[]).is_err());
}

/// A folder's fingerprint follows its files' contents and names: the same for the
/// same files, another when a file is edited in place, renamed or added.
#[test]
fn a_folder_fingerprint_changes_with_any_file() {
    use boneage_core::dataset::folder_fingerprint;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("a.mask.png"), b"one").unwrap();
    std::fs::write(dir.join("b.mask.png"), b"two").unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    let first = folder_fingerprint(dir).unwrap();
    assert!(first.starts_with("2 files "), "{first}");
    assert_eq!(folder_fingerprint(dir).unwrap(), first);
    std::fs::write(dir.join("b.mask.png"), b"tw0").unwrap();
    let edited = folder_fingerprint(dir).unwrap();
    assert_ne!(edited, first);
    std::fs::rename(dir.join("b.mask.png"), dir.join("c.mask.png")).unwrap();
    let renamed = folder_fingerprint(dir).unwrap();
    assert_ne!(renamed, edited);
    std::fs::write(dir.join("d.mask.png"), b"").unwrap();
    assert!(folder_fingerprint(dir).unwrap().starts_with("3 files "));
    // A folder that is not there is an error naming it.
    let err = folder_fingerprint(&dir.join("absent"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("absent"), "{err}");
}
