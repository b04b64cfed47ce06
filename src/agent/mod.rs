//! What agents do, whatever they use: the [`Desk`] (lookup, start a flow
//! for a customer, read their conversation, take it over, write in it, hand
//! it back), with customers named by [`CustomerRef`]. Agents see full names
//! and addresses (customers only ever see masked ones).

mod customer;
mod desk;
mod lookup;
mod transcript;

pub use customer::{CustomerRef, NotAnAddress};
pub use desk::{Desk, DeskError, Started, Surface};
pub use lookup::{Lookup, LookupBy};
pub use transcript::{Line, Speaker, Transcript};
