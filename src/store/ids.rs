//! The model's typed ids as database values: each is stored as the integer
//! it wraps, so queries bind and read them as they are (`.bind(id)`,
//! `row.try_get::<ConversationId, _>("id")`) and no `i64` leaks out of a
//! row by mistake. Here rather than in the model, which knows no database.

use sqlx::any::AnyTypeInfo;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Any, Database, Decode, Encode, Type};

use crate::model::{ConversationId, LabelId, MessageId, SiteId, TicketNumber, UserId, VisitorId};

macro_rules! integer_column {
    ($($name:ident),+) => {$(
        impl Type<Any> for $name {
            fn type_info() -> AnyTypeInfo {
                <i64 as Type<Any>>::type_info()
            }

            fn compatible(ty: &AnyTypeInfo) -> bool {
                <i64 as Type<Any>>::compatible(ty)
            }
        }

        impl Encode<'_, Any> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <Any as Database>::ArgumentBuffer,
            ) -> Result<IsNull, BoxDynError> {
                <i64 as Encode<'_, Any>>::encode_by_ref(&self.0, buf)
            }
        }

        impl<'r> Decode<'r, Any> for $name {
            fn decode(value: <Any as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                <i64 as Decode<'r, Any>>::decode(value).map($name)
            }
        }
    )+};
}

integer_column!(
    UserId,
    ConversationId,
    TicketNumber,
    MessageId,
    SiteId,
    VisitorId,
    LabelId
);
