# Tạo API key mới
curl -X POST "$TWINEXPERT_API_URL/auth/api-keys" \
  -H "Authorization: Bearer $TWINEXPERT_JWT" \
  -H "Content-Type: application/json" \
  -d '{
    "name": "My App",
    "scope": "full_access"
  }'
