//! ServiceAccounts: DELETE answers with the account, as the real registry does.

use super::Strategy;

pub struct ServiceAccount;

impl Strategy for ServiceAccount {
    fn returns_deleted_object(&self) -> bool {
        true
    }
}
