package export

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
)

// ReadFile opens an export file as a client would: a ZIP with exactly one
// entry (its CRC checked), a CSV inside, the byte-order mark of the excel
// option dropped, every record as long as the header. It returns the
// entry's name and the records, header first.
func ReadFile(raw []byte) (string, [][]string, error) {
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return "", nil, fmt.Errorf("the ZIP does not open: %w", err)
	}
	if len(zr.File) != 1 {
		return "", nil, fmt.Errorf("the ZIP has %d entries, want 1", len(zr.File))
	}
	rc, err := zr.File[0].Open()
	if err != nil {
		return "", nil, err
	}
	defer rc.Close()
	body, err := io.ReadAll(rc)
	if err != nil {
		return "", nil, fmt.Errorf("ZIP entry: %w", err)
	}
	recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte(bom)))).ReadAll()
	if err != nil {
		return "", nil, fmt.Errorf("the CSV does not parse: %w", err)
	}
	return zr.File[0].Name, recs, nil
}
