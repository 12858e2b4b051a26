// Package export holds the segment export tasks (seed 004): export:segment
// streams a segment's members into one CSV inside a ZIP on blob storage,
// and exports:expire removes what the download and history windows no
// longer keep.
package export

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// buckets, the default
	_ "gocloud.dev/blob/s3blob"   // s3:// buckets, any S3-compatible store
	"gocloud.dev/gcerrors"
)

// OpenBucket opens the export bucket named by a URL: file:///dir (a
// local directory; create_dir=true makes it) or
// s3://bucket?region=...&endpoint=...&use_path_style=true for any
// S3-compatible store.
func OpenBucket(ctx context.Context, url string) (*blob.Bucket, error) {
	b, err := blob.OpenBucket(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("open export bucket: %w", err)
	}
	return b, nil
}

// FileKey is where an export's published file lives.
func FileKey(orgID, exportID int64) string {
	return "exports/" + strconv.FormatInt(orgID, 10) + "/" + strconv.FormatInt(exportID, 10) + ".zip"
}

// tempKey is where an export's file is written before it is published;
// every attempt of the export writes over it.
func tempKey(orgID, exportID int64) string { return FileKey(orgID, exportID) + ".part" }

// deleteIfThere deletes a key; a key already gone is not an error.
func deleteIfThere(ctx context.Context, b *blob.Bucket, key string) error {
	err := b.Delete(ctx, key)
	if err == nil || gcerrors.Code(err) == gcerrors.NotFound {
		return nil
	}
	return fmt.Errorf("delete %s: %w", key, err)
}

// IsNotFound tells whether a bucket error means the key is not there.
func IsNotFound(err error) bool {
	return err != nil && gcerrors.Code(err) == gcerrors.NotFound
}

// IsUnimplemented tells whether a bucket error means the bucket cannot
// do it (signed URLs on a local directory without a signer).
func IsUnimplemented(err error) bool {
	return err != nil && gcerrors.Code(err) == gcerrors.Unimplemented
}

var errNoBucket = errors.New("no export bucket configured")
