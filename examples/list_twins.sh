# Lấy danh sách twins
curl -X GET "$TWINEXPERT_API_URL/twins" \
  -H "Authorization: Bearer $TWINEXPERT_API_KEY" \
  -H "Content-Type: application/json"
