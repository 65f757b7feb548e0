//! One module per subcommand: its arguments, then a short `run` that calls the
//! library (`boneage`, `boneage_core`, `boneage_nn`). No command imports another.

pub mod annotate;
pub mod assess;
pub mod bench;
pub mod evaluate;
pub mod evaluate_preprocess;
pub mod export;
pub mod hand_template;
pub mod inspect;
pub mod keypoints;
pub mod merge;
pub mod mine;
pub mod phantom;
pub mod preprocess;
pub mod register;
pub mod review;
pub mod score_preprocess;
pub mod segment;
pub mod serve;
pub mod sheet;
pub mod split;
pub mod train;
