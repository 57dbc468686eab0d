#pragma once

#include "st-db.h"

G_BEGIN_DECLS

/* The script that moves the schema from @to_version - 1 to @to_version. */
const char *st_db_schema_migration (gint to_version);

/* The first schema version with product_serials and product_sequences. */
#define ST_DB_SCHEMA_PRODUCT_SERIALS 5

/* Product serials given to more than one unit of a product (only a
 * database from before ST_DB_SCHEMA_PRODUCT_SERIALS can hold them): one row
 * per serial, one text column naming the product, the serial and its units. */
#define ST_DB_SQL_DUPLICATE_PRODUCT_SERIALS \
  "SELECT 'product ' || b.product || ' serial ' || u.product_serial || ' given to units '" \
  " || group_concat (u.id, ', ') FROM units u JOIN batches b ON b.id = u.batch_id" \
  " WHERE u.product_serial IS NOT NULL AND u.product_serial <> ''" \
  " GROUP BY b.product, u.product_serial HAVING count(*) > 1 ORDER BY min (u.id)"

G_END_DECLS
