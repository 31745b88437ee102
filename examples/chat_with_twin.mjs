// Tạo cuộc trò chuyện và gửi tin nhắn
async function chatWithTwin(twinId, message) {
  // 1. Tạo cuộc trò chuyện mới
  const conversationResponse = await
  fetch(`${process.env.TWINEXPERT_API_URL}/conversations`, {
    method: 'POST',
    headers: {
      'Authorization': `Bearer ${process.env.TWINEXPERT_API_KEY}`,
      'Content-Type': 'application/json'
    },
    body: JSON.stringify({
      twinId: twinId,
      title: 'API Chat Session'
    })
  });

  const conversation = await conversationResponse.json();
  const conversationId = conversation.data.id;

  // 2. Gửi tin nhắn
  const messageResponse = await
  fetch(`${process.env.NEXT_PUBLIC_API_URL}/api/v1/conversations/${conversationId}/messages`, {
    method: 'POST',
    headers: {
      'Authorization': `Bearer ${process.env.TWINEXPERT_API_KEY}`,
      'Content-Type': 'application/json'
    },
    body: JSON.stringify({
      content: message
    })
  });

  const result = await messageResponse.json();
  return result.data;
}

// Sử dụng
chatWithTwin(process.env.TWINEXPERT_TWIN_ID, 'Xin chào!').then(result => {
  console.log('Response:', result);
});
