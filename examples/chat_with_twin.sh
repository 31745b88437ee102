# 1. Tạo cuộc trò chuyện mới
curl -X POST "$TWINEXPERT_API_URL/conversations" \
  -H "Authorization: Bearer $TWINEXPERT_API_KEY" \
  -H "Content-Type: application/json" \
  -d '{
    "twinId": "'"$TWINEXPERT_TWIN_ID"'",
    "title": "API Chat Session"
  }' | tee /tmp/twinexpert-conversation.json
echo

# 2. Gửi tin nhắn (với conversation ID từ response trên)
CONVERSATION_ID=$(sed -n 's/^{"success":true,"data":{"id":"\([^"]*\)".*/\1/p' /tmp/twinexpert-conversation.json)
curl -X POST \
"$TWINEXPERT_API_URL/conversations/$CONVERSATION_ID/messages" \
  -H "Authorization: Bearer $TWINEXPERT_API_KEY" \
  -H "Content-Type: application/json" \
  -d '{
    "content": "Xin chào!"
  }'
