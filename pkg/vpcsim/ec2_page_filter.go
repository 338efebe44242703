package vpcsim

// pageFiltered answers one page of a filtered, paged describe. EC2 may
// apply MaxResults to the unfiltered list and then the filters, so a page
// can hold fewer items than MaxResults, even none, while NextToken is set;
// with beforeFilter (Faults.PageBeforeFilter) vpcsim does the same, so a
// client that stops at a short or empty page is caught. Without it the
// filters come first and every page but the last is full.
func pageFiltered[T any](items []T, fs []filter, field fieldFunc[T], p *params, minMax, maxMax int, key func(T) string, beforeFilter bool) ([]T, string, error) {
	if !beforeFilter {
		kept, err := applyFilters(items, fs, field)
		if err != nil {
			return nil, "", err
		}
		return paginate(kept, p, minMax, maxMax, key)
	}
	// an unknown filter name is refused before any paging
	if _, err := applyFilters(nil, fs, field); err != nil {
		return nil, "", err
	}
	page, next, err := paginate(items, p, minMax, maxMax, key)
	if err != nil {
		return nil, "", err
	}
	kept, err := applyFilters(page, fs, field)
	if err != nil {
		return nil, "", err
	}
	return kept, next, nil
}
